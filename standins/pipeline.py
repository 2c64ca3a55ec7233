"""Drives a CodeBuild stand-in's builds the way AWS would be seen from outside.

Moves a build through its phases, writes its log to CloudWatch Logs (moto) and delivers the
matching EventBridge events into the SQS queue (moto) the bot reads, exactly as
EventBridge → SQS would. Tests, benchmarks and the local sandbox share it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

from standins.codebuild import FakeCodeBuild

LOG_BATCH = 5_000  # PutLogEvents takes at most 10,000 events per call


class BuildPipeline:
    def __init__(
        self,
        codebuild: FakeCodeBuild,
        *,
        logs_client: Any,
        sqs_client: Any | None = None,
        queue_url: str | None = None,
    ) -> None:
        self.codebuild = codebuild
        self._logs = logs_client
        self._sqs = sqs_client
        self._queue_url = queue_url

    def deliver(self, event: dict[str, Any]) -> None:
        """Put one event into the queue as EventBridge's SQS target does (the body is the event)."""
        if self._sqs is None or self._queue_url is None:
            return
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(event))

    def enter_phase(self, build_id: str, phase: str, *, deliver: bool = True) -> dict[str, Any]:
        self.codebuild.advance(build_id, phase)
        event = self.codebuild.phase_change_event(build_id)
        if deliver:
            self.deliver(event)
        return event

    def write_log(self, build_id: str, lines: Iterable[str]) -> None:
        """Create the build's log stream in CloudWatch Logs and fill it, as the agent would."""
        project, stream = build_id.split(":", 1)
        group = f"/aws/codebuild/{project}"
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_group(logGroupName=group)
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        for line in lines:
            # The agent sends each line with its newline, so even an empty line is not empty.
            batch.append({"timestamp": now, "message": line + "\n"})
            if len(batch) == LOG_BATCH:
                self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                batch = []
        if batch:
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        self.codebuild.set_logs(build_id, group, stream)

    def finish(
        self,
        build_id: str,
        status: str,
        *,
        failed_phase: str | None = None,
        context: tuple[str, str] | None = None,
        exported: dict[str, str] | None = None,
        commit: str | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """End the build and deliver its final state change event."""
        self.codebuild.finish(
            build_id,
            status,
            failed_phase=failed_phase,
            context=context,
            exported=exported,
            commit=commit,
        )
        event = self.codebuild.state_change_event(build_id)
        if deliver:
            self.deliver(event)
        return event
