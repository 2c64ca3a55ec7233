"""Keeps each build's one channel message true, and explains failures once, in its thread.

Updates arrive from SQS events, from reconciliation polls and from `/build` itself, at least
once and in any order. Every change goes through a conditional write in the store, so the
record (not this process's memory) decides what the channel shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from bot.builds import build_console_url
from bot.errors import AwsError, StoreConflictError
from bot.events import FAILED_STATUSES, BuildUpdate
from bot.failures import classify
from bot.messages import build_announced_message, build_status_message, failure_explanation_message
from bot.records import BuildRecord
from bot.redaction import redact, secret_env_values
from bot.services import Services
from bot.status import apply_update, record_from_update
from integrations.slack import PostedMessage, SlackPostError
from integrations.store import mutate

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 5_000


class BuildTracker:
    def __init__(
        self,
        services: Services,
        *,
        on_success: Callable[[BuildRecord], Awaitable[None]] | None = None,
    ) -> None:
        self._services = services
        self._on_success = on_success
        self._interval = services.settings.status_update_seconds
        self._render_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._last_render: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}

    # -- entry points ------------------------------------------------------------------------

    async def apply(self, update: BuildUpdate) -> None:
        """Fold one update into the build's record, then bring Slack in line with it."""
        services = self._services
        now = services.clock()
        existing = await services.store.get(BuildRecord, update.build_id)
        if existing is None:
            environment = services.environment_of_project(update.project)
            if environment is None:
                log.debug("ignoring build %s of unconfigured project", update.build_id)
                return
            record = record_from_update(
                update,
                environment=environment,
                channel=services.environments.environments[environment].channel,
                console_url=build_console_url(update.build_arn, services.region),
                now=now,
            )
            try:
                created = await services.store.create(record)
            except StoreConflictError:
                pass  # someone created it meanwhile: fold our update in like any other
            else:
                await self.announce(created)  # shows this state already: no render needed
                if created.status in FAILED_STATUSES:
                    await self._explain(created.build_id, update)
                elif created.status == "SUCCEEDED" and self._on_success is not None:
                    await self._on_success(created)
                return

        changed = await mutate(
            services.store,
            BuildRecord,
            update.build_id,
            lambda current: apply_update(current, update, now),
        )
        await self._ensure_message(update.build_id)
        if changed is not None:
            await self._after_change(changed[1], update)
        elif existing is not None:
            await self._retry_explanation(existing, update)

    async def _ensure_message(self, build_id: str) -> None:
        """Post the message an earlier attempt failed to post (Slack was down, say)."""

        def claim(current: BuildRecord) -> BuildRecord | None:
            if current.message_ts is not None or current.message_claimed:
                return None
            return current.model_copy(update={"message_claimed": True})

        claimed = await mutate(self._services.store, BuildRecord, build_id, claim)
        if claimed is not None:
            await self.announce(claimed[1])

    async def announce(self, record: BuildRecord) -> PostedMessage:
        """Post the build's message (whoever holds the record's message claim does this)."""
        text, blocks = build_announced_message(record)
        try:
            posted = await self._services.chat.post(record.channel, text, blocks)
        except SlackPostError:

            def release(current: BuildRecord) -> BuildRecord | None:
                if current.message_ts is not None:
                    return None
                return current.model_copy(update={"message_claimed": False})

            await mutate(self._services.store, BuildRecord, record.build_id, release)
            raise
        self._last_render[record.build_id] = time.monotonic()

        def remember(current: BuildRecord) -> BuildRecord:
            return current.model_copy(
                update={
                    "message_ts": posted.ts,
                    "channel": posted.channel,
                    "rendered_revision": record.revision,
                }
            )

        result = await mutate(self._services.store, BuildRecord, record.build_id, remember)
        if result is not None and result[1].revision > record.revision:
            # Updates arrived while we were posting; show them.
            await self._render(record.build_id)
        return posted

    # -- after a change ----------------------------------------------------------------------

    async def _after_change(self, record: BuildRecord, update: BuildUpdate) -> None:
        final = record.status != "IN_PROGRESS"
        await self._request_render(record.build_id, immediate=final)
        if final and record.status in FAILED_STATUSES:
            await self._explain(record.build_id, update)
        elif record.status == "SUCCEEDED" and self._on_success is not None:
            await self._on_success(record)

    async def _retry_explanation(self, record: BuildRecord, update: BuildUpdate) -> None:
        """A failed build whose explanation was never posted gets another try."""
        if record.status in FAILED_STATUSES and not record.explanation_claimed:
            await self._explain(record.build_id, update)

    async def _request_render(self, build_id: str, *, immediate: bool) -> None:
        """Render now, or once per interval for bursts; the final state is never delayed."""
        pending = self._pending.get(build_id)
        if pending is not None and not pending.done():
            if not immediate:
                return  # the scheduled render will read the newest record
            pending.cancel()
        since = time.monotonic() - self._last_render.get(build_id, float("-inf"))
        if immediate or since >= self._interval:
            await self._render(build_id)
            return
        self._pending[build_id] = asyncio.create_task(
            self._render_later(build_id, self._interval - since)
        )

    async def _render_later(self, build_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._pending.pop(build_id, None)
        try:
            await self._render(build_id)
        except (SlackPostError, AwsError, StoreConflictError) as exc:
            log.warning("could not update the status of %s: %s", build_id, exc)

    async def _render(self, build_id: str) -> None:
        # One render per build at a time, so an older state never lands after a newer one.
        async with self._render_locks[build_id]:
            record = await self._services.store.get(BuildRecord, build_id)
            if record is None or record.message_ts is None:
                return  # the creator posts the message and renders what it missed
            if record.rendered_revision >= record.revision:
                return
            text, blocks = build_status_message(record)
            await self._services.chat.update(record.channel, record.message_ts, text, blocks)
            self._last_render[build_id] = time.monotonic()
            revision = record.revision

            def rendered(current: BuildRecord) -> BuildRecord | None:
                if current.rendered_revision >= revision:
                    return None
                return current.model_copy(update={"rendered_revision": revision})

            await mutate(self._services.store, BuildRecord, build_id, rendered)
            if record.status != "IN_PROGRESS":
                self._forget(build_id)

    async def aclose(self) -> None:
        """Cancel the renders still waiting for their interval (the bot is stopping)."""
        pending = list(self._pending.values())
        self._pending.clear()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _forget(self, build_id: str) -> None:
        self._last_render.pop(build_id, None)
        lock = self._render_locks.get(build_id)
        if lock is not None and not lock.locked():
            del self._render_locks[build_id]

    # -- failure explanation -----------------------------------------------------------------

    async def _explain(self, build_id: str, update: BuildUpdate) -> None:
        """Post why the build failed, once: the conditional write picks one poster."""

        def claim(current: BuildRecord) -> BuildRecord | None:
            if current.explanation_claimed:
                return None
            return current.model_copy(update={"explanation_claimed": True})

        claimed = await mutate(self._services.store, BuildRecord, build_id, claim)
        if claimed is None:
            return
        try:
            await self._post_explanation(claimed[1], update)
        except BaseException:
            # Give the claim back so a redelivered event (or the next poll) can try again.
            def release(current: BuildRecord) -> BuildRecord | None:
                if current.explanation_ts is not None:
                    return None
                return current.model_copy(update={"explanation_claimed": False})

            await asyncio.shield(mutate(self._services.store, BuildRecord, build_id, release))
            raise

    async def _post_explanation(self, record: BuildRecord, update: BuildUpdate) -> None:
        build_id = record.build_id
        lines, log_note = await self._read_log(record)
        finding = classify(
            lines, phase_context=record.failed_phase_context, build_status=record.status
        )
        secrets = secret_env_values(update.environment_variables)
        excerpt = [redact(line, secret_values=secrets) for line in finding.excerpt]
        context = record.failed_phase_context
        shown = record.model_copy(
            update={"failed_phase_context": context and redact(context, secret_values=secrets)}
        )
        text, blocks = failure_explanation_message(
            shown,
            category=str(finding.category),
            title=finding.title,
            hint=finding.hint,
            excerpt=excerpt,
            log_note=log_note,
        )
        posted = await self._services.chat.post(
            record.channel, text, blocks, thread_ts=record.message_ts
        )

        def remember(current: BuildRecord) -> BuildRecord:
            return current.model_copy(update={"explanation_ts": posted.ts})

        await mutate(self._services.store, BuildRecord, build_id, remember)

    async def _read_log(self, record: BuildRecord) -> tuple[list[str], str | None]:
        if not (record.log_group and record.log_stream):
            return [], "CodeBuild reported no log location for this build"
        try:
            lines = await self._services.logs.tail(
                record.log_group, record.log_stream, max_lines=LOG_TAIL_LINES
            )
        except AwsError as exc:
            log.warning("could not read the log of %s: %s", record.build_id, exc.user_message)
            return [], exc.user_message
        return lines, None
