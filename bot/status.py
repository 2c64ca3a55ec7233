"""How a build's record changes with each update: never backwards, final is final."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.events import FINAL_STATUSES, PHASE_ORDER, BuildUpdate
from bot.records import BuildRecord

_FILL_IN = (
    "build_number",
    "initiator",
    "started_at",
    "log_group",
    "log_stream",
    "log_link",
)


def phase_rank(phase: str | None) -> int:
    return PHASE_ORDER.index(phase) if phase in PHASE_ORDER else -1


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def apply_update(record: BuildRecord, update: BuildUpdate, now: datetime) -> BuildRecord | None:
    """The record after `update`, or None when it says nothing new.

    Duplicates, out-of-order phase events and anything after the final state change nothing,
    so at-least-once delivery in any order converges on the true final state.
    """
    changes: dict[str, Any] = {}
    for name in _FILL_IN:
        value = getattr(update, name)
        if value is not None and getattr(record, name) is None:
            changes[name] = value
    if not is_final(record.status):
        if update.is_final:
            changes.update(
                status=update.status,
                current_phase="COMPLETED",
                ended_at=update.ended_at or update.observed_at,
                failed_phase=update.failed_phase,
                failed_phase_context=update.failed_phase_context,
            )
        elif phase_rank(update.phase) > phase_rank(record.current_phase):
            changes["current_phase"] = update.phase
    elif record.failed_phase is None and update.failed_phase is not None:
        # A late event can still tell us which phase failed and why.
        changes.update(
            failed_phase=update.failed_phase, failed_phase_context=update.failed_phase_context
        )
    if not changes:
        return None
    changes.update(updated_at=now, revision=record.revision + 1)
    return record.model_copy(update=changes)


def record_from_update(
    update: BuildUpdate,
    *,
    environment: str,
    channel: str,
    console_url: str,
    now: datetime,
) -> BuildRecord:
    """A record for a build we did not start (webhook, console, another tool)."""
    final = update.is_final
    return BuildRecord(
        build_id=update.build_id,
        build_arn=update.build_arn,
        build_number=update.build_number,
        project=update.project,
        environment=environment,
        source_version=update.source_version or "(default)",
        initiator=update.initiator,
        channel=channel,
        status=update.status,
        current_phase="COMPLETED" if final else update.phase,
        console_url=console_url,
        created_at=now,
        updated_at=now,
        started_at=update.started_at,
        ended_at=(update.ended_at or update.observed_at) if final else None,
        failed_phase=update.failed_phase,
        failed_phase_context=update.failed_phase_context,
        log_group=update.log_group,
        log_stream=update.log_stream,
        log_link=update.log_link,
        revision=1,
    )
