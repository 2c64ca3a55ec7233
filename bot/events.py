"""CodeBuild's EventBridge events, parsed into one `BuildUpdate` the status tracker understands.

Field names are the event's own ("build-status", "additional-information"…); see
https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

STATE_CHANGE = "CodeBuild Build State Change"
PHASE_CHANGE = "CodeBuild Build Phase Change"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"})
FAILED_STATUSES = frozenset({"FAILED", "FAULT", "TIMED_OUT"})
UNSUCCESSFUL_PHASE_STATUSES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "CLIENT_ERROR", "STOPPED"})

# The order CodeBuild runs phases in; a phase event can never move a build backwards.
PHASE_ORDER = (
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
)


class EventParseError(ValueError):
    """The message is not a CodeBuild event we understand (it will be parked, not retried)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class EventVariable(_Model):
    name: str
    value: str = ""
    type: str | None = None


class EventEnvironment(_Model):
    image: str | None = None
    type: str | None = None
    compute_type: str | None = Field(default=None, alias="compute-type")
    environment_variables: list[EventVariable] = Field(
        default_factory=list, alias="environment-variables"
    )


class EventLogs(_Model):
    group_name: str | None = Field(default=None, alias="group-name")
    stream_name: str | None = Field(default=None, alias="stream-name")
    deep_link: str | None = Field(default=None, alias="deep-link")


class EventPhase(_Model):
    phase_type: str = Field(alias="phase-type")
    phase_status: str | None = Field(default=None, alias="phase-status")
    phase_context: list[str] = Field(default_factory=list, alias="phase-context")
    duration_in_seconds: float | None = Field(default=None, alias="duration-in-seconds")


class AdditionalInformation(_Model):
    build_number: int | None = Field(default=None, alias="build-number")
    initiator: str | None = None
    build_start_time: str | None = Field(default=None, alias="build-start-time")
    source_version: str | None = Field(default=None, alias="source-version")
    build_complete: bool = Field(default=False, alias="build-complete")
    environment: EventEnvironment = Field(default_factory=EventEnvironment)
    logs: EventLogs | None = None
    phases: list[EventPhase] = Field(default_factory=list)

    @field_validator("build_number", mode="before")
    @classmethod
    def _number_may_be_float(cls, value: Any) -> Any:
        # EventBridge sends numbers as floats ("build-number": 55.0).
        return int(value) if isinstance(value, float) else value


class BuildEventDetail(_Model):
    build_status: str | None = Field(default=None, alias="build-status")  # not on phase events
    project_name: str = Field(alias="project-name")
    build_id: str = Field(alias="build-id")
    current_phase: str | None = Field(default=None, alias="current-phase")
    current_phase_context: str | None = Field(default=None, alias="current-phase-context")
    additional_information: AdditionalInformation = Field(
        default_factory=AdditionalInformation, alias="additional-information"
    )
    completed_phase: str | None = Field(default=None, alias="completed-phase")
    completed_phase_status: str | None = Field(default=None, alias="completed-phase-status")
    completed_phase_context: str | None = Field(default=None, alias="completed-phase-context")


class CodeBuildEvent(_Model):
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    time: datetime
    region: str | None = None
    detail: BuildEventDetail


class BuildUpdate(_Model):
    """What we learned about a build, from an event or from reading the build."""

    build_id: str  # `project:uuid`
    build_arn: str
    project: str
    status: str
    phase: str | None = None
    build_number: int | None = None
    initiator: str | None = None
    source_version: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    failed_phase: str | None = None
    failed_phase_context: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    log_link: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict, repr=False)
    observed_at: datetime
    origin: Literal["event", "poll", "start"] = "event"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def build_id_from_arn(arn: str) -> str:
    """`arn:aws:codebuild:…:build/project:uuid` → `project:uuid` (ids pass through)."""
    return arn.split(":build/", 1)[1] if ":build/" in arn else arn


def parse_event(body: str) -> BuildUpdate:
    """Parse an SQS message body holding an EventBridge CodeBuild event."""
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise EventParseError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("source") != "aws.codebuild":
        raise EventParseError("not an aws.codebuild event")
    if raw.get("detail-type") not in (STATE_CHANGE, PHASE_CHANGE):
        raise EventParseError(f"unsupported detail-type {raw.get('detail-type')!r}")
    try:
        event = CodeBuildEvent.model_validate(raw)
    except ValidationError as exc:
        raise EventParseError(f"malformed CodeBuild event: {exc.error_count()} error(s)") from exc
    return _update_from_event(event)


def _update_from_event(event: CodeBuildEvent) -> BuildUpdate:
    detail = event.detail
    info = detail.additional_information
    failed_phase, failed_context = _failed_phase(info.phases)
    if failed_phase is None and detail.completed_phase_status in UNSUCCESSFUL_PHASE_STATUSES:
        failed_phase = detail.completed_phase
        failed_context = _clean_context(detail.completed_phase_context)
    logs = info.logs or EventLogs()
    # Phase events carry no status: the build is running, in the phase that has not ended.
    status = detail.build_status or "IN_PROGRESS"
    phase = detail.current_phase or _phase_entered(info.phases)
    return BuildUpdate(
        build_id=build_id_from_arn(detail.build_id),
        build_arn=detail.build_id,
        project=detail.project_name,
        status=status,
        phase="COMPLETED" if status in FINAL_STATUSES else phase,
        build_number=info.build_number,
        initiator=info.initiator,
        source_version=info.source_version,
        started_at=_parse_start_time(info.build_start_time),
        ended_at=event.time if status in FINAL_STATUSES else None,
        failed_phase=failed_phase,
        failed_phase_context=failed_context,
        log_group=logs.group_name,
        log_stream=logs.stream_name,
        # Before the log exists CodeBuild links to "group=null;stream=null": no use to anyone.
        log_link=logs.deep_link if logs.group_name else None,
        environment_variables={v.name: v.value for v in info.environment.environment_variables},
        observed_at=event.time,
        origin="event",
    )


def _phase_entered(phases: list[EventPhase]) -> str | None:
    running = [p.phase_type for p in phases if p.phase_status is None]
    return running[-1] if running else None


def _failed_phase(phases: list[EventPhase]) -> tuple[str | None, str | None]:
    for phase in phases:
        if phase.phase_status in UNSUCCESSFUL_PHASE_STATUSES:
            return phase.phase_type, _clean_context(" ".join(phase.phase_context))
    return None, None


def _clean_context(context: str | None) -> str | None:
    """CodeBuild's contexts are often `": "` or `"[: ]"`, which say nothing."""
    if context is None:
        return None
    text = context.strip().removeprefix("[").removesuffix("]").strip()
    return None if text.strip(": ") == "" else text


def _parse_start_time(value: str | None) -> datetime | None:
    # The event's own format: "Sep 1, 2017 4:12:29 PM" (UTC).
    if not value:
        return None
    try:
        return datetime.strptime(value, "%b %d, %Y %I:%M:%S %p").replace(tzinfo=UTC)
    except ValueError:
        return None
