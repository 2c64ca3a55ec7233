"""AWS CodeBuild: start, read and stop builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.builds import BuildRequest
from integrations.aws import aws_call


class BuildPhase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    phase_type: str = Field(alias="phaseType")
    phase_status: str | None = Field(default=None, alias="phaseStatus")
    duration_in_seconds: int | None = Field(default=None, alias="durationInSeconds")
    contexts: list[dict[str, str]] = Field(default_factory=list)


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
