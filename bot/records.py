"""What the bot remembers between requests, as records the store keeps."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict


class StoredRecord(BaseModel):
    """A record with a key, a partition to list by, and a version for conditional writes."""

    model_config = ConfigDict(frozen=True)

    KIND: ClassVar[str]

    version: int = 0
    created_at: datetime

    @property
    @abstractmethod
    def key(self) -> str:
        """Unique within the kind."""

    @property
    @abstractmethod
    def partition(self) -> str:
        """What `Store.recent` lists by, e.g. the environment."""


class BuildRecord(StoredRecord):
    """A build the bot started or heard about, and where its status message lives."""

    KIND: ClassVar[str] = "build"

    build_id: str  # CodeBuild's `project:uuid`
    build_arn: str
    build_number: int | None = None
    project: str
    environment: str
    source_version: str
    requested_by: str | None = None  # Slack user id when started from Slack
    initiator: str | None = None  # CodeBuild's initiator otherwise (webhook, console…)
    channel: str
    message_ts: str | None = None
    # Whoever creates the record posts its message; a failed post gives the claim back so a
    # later update can try again.
    message_claimed: bool = True
    status: str = "IN_PROGRESS"
    current_phase: str | None = None
    console_url: str
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    failed_phase: str | None = None
    failed_phase_context: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    log_link: str | None = None
    # Set once, by whoever wins the conditional write, so one explanation is posted.
    explanation_claimed: bool = False
    explanation_ts: str | None = None
    # Set once a successful build's deploy request was handled (posted, or "no image" said).
    deploy_claimed: bool = False
    # `revision` counts state changes; `rendered_revision` is the one the channel message shows.
    rendered_revision: int = 0
    revision: int = 0

    @property
    def key(self) -> str:
        return self.build_id

    @property
    def partition(self) -> str:
        return self.environment


class ParkedEvent(StoredRecord):
    """An event that could not be handled; kept for the operator instead of looping."""

    KIND: ClassVar[str] = "parked_event"

    message_id: str
    body: str
    reason: str

    @property
    def key(self) -> str:
        return self.message_id

    @property
    def partition(self) -> str:
        return "parked"


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    at: datetime


class TargetInstance(BaseModel):
    """An EC2 instance a deploy would reach, as seen when the request was made."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    name: str | None = None
    architecture: str
    state: str
    ssm_ping: str | None = None  # Online, ConnectionLost, Inactive; None: not managed by SSM


class InstanceResult(BaseModel):
    """One instance's part of a deployment, as SSM reports it."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    name: str | None = None
    status: str  # SSM's: Pending, InProgress, Success, Failed, TimedOut, Undeliverable…
    detail: str | None = None
    stderr_tail: list[str] = []
    cause: str | None = None  # failure category, e.g. exec_format
    cause_title: str | None = None


DeployStatus = Literal[
    "pending",  # waiting for approvals
    "blocked",  # cannot be approved (architecture mismatch, no instances…)
    "approved",  # approvals complete; the deployment is being sent
    "deploying",  # SSM command sent
    "succeeded",
    "failed",
    "rejected",
    "expired",
    "superseded",
]


class DeployRequest(StoredRecord):
    """A request to deploy one exact image to one environment, and what became of it."""

    KIND: ClassVar[str] = "deploy"

    request_id: str
    environment: str
    origin: Literal["build", "redeploy"]
    repository: str
    registry_uri: str  # <account>.dkr.ecr.<region>.amazonaws.com/<repository>
    tag: str | None = None
    digest: str
    commit: str | None = None
    build_id: str | None = None
    build_number: int | None = None
    requested_by: str | None = None  # Slack user id (build requester or /deploy user)
    instances: list[TargetInstance] = []
    architecture_verdict: Literal["match", "mismatch", "unknown"] = "unknown"
    architecture_detail: str = ""
    blockers: list[str] = []  # why it cannot be approved; empty when it can
    required_approvals: int
    approvers: list[str]  # as configured: user ids and user-group ids
    allow_self_approval: bool = False
    approvals: list[Approval] = []
    status: DeployStatus = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    superseded_by: str | None = None
    expires_at: datetime
    channel: str
    message_ts: str | None = None
    command_id: str | None = None
    command_sent_at: datetime | None = None
    results: list[InstanceResult] = []
    results_ts: str | None = None
    finished_at: datetime | None = None
    failure: str | None = None  # why the deployment could not be sent

    @property
    def key(self) -> str:
        return self.request_id

    @property
    def partition(self) -> str:
        return self.environment

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]
