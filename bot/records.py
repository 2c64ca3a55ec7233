"""What the bot remembers between requests, as records the store keeps."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import ClassVar

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
    # How many state changes the channel message has not shown yet (0: it is current).
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
