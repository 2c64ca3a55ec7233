"""AWS CodeBuild: start, read and stop builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.builds import BuildRequest
from bot.events import FINAL_STATUSES, UNSUCCESSFUL_PHASE_STATUSES, BuildUpdate
from integrations.aws import aws_call


class BuildPhase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    phase_type: str = Field(alias="phaseType")
    phase_status: str | None = Field(default=None, alias="phaseStatus")
    duration_in_seconds: int | None = Field(default=None, alias="durationInSeconds")
    contexts: list[dict[str, str]] = Field(default_factory=list)


class BuildEnvironmentVariable(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    value: str = ""


class BuildEnvironment(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    environment_variables: list[BuildEnvironmentVariable] = Field(
        default_factory=list, alias="environmentVariables"
    )


class BuildLogs(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    group_name: str | None = Field(default=None, alias="groupName")
    stream_name: str | None = Field(default=None, alias="streamName")
    deep_link: str | None = Field(default=None, alias="deepLink")


class BuildInfo(BaseModel):
    """The parts of CodeBuild's Build structure the bot uses; names as in the AWS API."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    arn: str
    build_number: int | None = Field(default=None, alias="buildNumber")
    project_name: str = Field(alias="projectName")
    build_status: str = Field(alias="buildStatus")
    current_phase: str | None = Field(default=None, alias="currentPhase")
    source_version: str | None = Field(default=None, alias="sourceVersion")
    resolved_source_version: str | None = Field(default=None, alias="resolvedSourceVersion")
    initiator: str | None = None
    start_time: datetime | None = Field(default=None, alias="startTime")
    end_time: datetime | None = Field(default=None, alias="endTime")
    phases: list[BuildPhase] = Field(default_factory=list)
    logs: BuildLogs | None = None
    environment: BuildEnvironment = Field(default_factory=BuildEnvironment)
    exported_environment_variables: list[BuildEnvironmentVariable] = Field(
        default_factory=list, alias="exportedEnvironmentVariables"
    )

    @property
    def exported(self) -> dict[str, str]:
        """Variables the buildspec exported (`env.exported-variables`), e.g. IMAGE_TAG."""
        return {v.name: v.value for v in self.exported_environment_variables}

    def to_update(self, now: datetime) -> BuildUpdate:
        """The same view of a build as an EventBridge event gives, for the status tracker."""
        failed_phase, failed_context = None, None
        for phase in self.phases:
            if phase.phase_status in UNSUCCESSFUL_PHASE_STATUSES:
                failed_phase = phase.phase_type
                failed_context = (
                    " ".join(
                        f"{c.get('statusCode', '')}: {c.get('message', '')}".strip(": ")
                        for c in phase.contexts
                    )
                    or None
                )
                break
        final = self.build_status in FINAL_STATUSES
        logs = self.logs or BuildLogs()
        return BuildUpdate(
            build_id=self.id,
            build_arn=self.arn,
            project=self.project_name,
            status=self.build_status,
            phase="COMPLETED" if final else self.current_phase,
            build_number=self.build_number,
            initiator=self.initiator,
            source_version=self.source_version,
            started_at=self.start_time,
            ended_at=(self.end_time or now) if final else None,
            failed_phase=failed_phase,
            failed_phase_context=failed_context,
            log_group=logs.group_name,
            log_stream=logs.stream_name,
            log_link=logs.deep_link,
            environment_variables={v.name: v.value for v in self.environment.environment_variables},
            observed_at=now,
            origin="poll",
        )


class CodeBuild:
    """Async facade over a boto3 CodeBuild client (injected, so tests point it at stand-ins)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    # Safe to retry: the idempotency token makes CodeBuild return the same build.
    @aws_call("start a CodeBuild build")
    def start_build(self, request: BuildRequest) -> BuildInfo:
        kwargs: dict[str, Any] = {
            "projectName": request.project,
            "sourceVersion": request.source_version,
            "imageOverride": request.image,
            "environmentTypeOverride": request.environment_type,
            "idempotencyToken": request.idempotency_token,
            "environmentVariablesOverride": [
                {"name": name, "value": value, "type": "PLAINTEXT"}
                for name, value in request.environment_variables.items()
            ],
        }
        if request.compute_type:
            kwargs["computeTypeOverride"] = request.compute_type
        response = self._client.start_build(**kwargs)
        return BuildInfo.model_validate(response["build"])

    @aws_call("read CodeBuild builds")
    def get_builds(self, build_ids: list[str]) -> list[BuildInfo]:
        builds: list[BuildInfo] = []
        for start in range(0, len(build_ids), 100):  # BatchGetBuilds takes at most 100 ids
            response = self._client.batch_get_builds(ids=build_ids[start : start + 100])
            builds.extend(BuildInfo.model_validate(item) for item in response.get("builds", []))
        return builds

    @aws_call("stop a CodeBuild build")
    def stop_build(self, build_id: str) -> BuildInfo:
        return BuildInfo.model_validate(self._client.stop_build(id=build_id)["build"])

    @aws_call("list a CodeBuild project's builds")
    def recent_build_ids(self, project: str, limit: int = 10) -> list[str]:
        """Newest first; one page is plenty to notice builds started outside Slack."""
        response = self._client.list_builds_for_project(projectName=project, sortOrder="DESCENDING")
        return [str(i) for i in response.get("ids", [])[:limit]]
