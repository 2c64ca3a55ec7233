"""A CodeBuild stand-in speaking the real AWS JSON 1.1 protocol, for what moto lacks.

moto's CodeBuild drops image/type/env-var overrides and finishes every build at once. This one
keeps the StartBuild requests it received, honours `idempotencyToken`, keeps builds running
until a test or the sandbox moves them on, and can answer AWS errors or answer slowly.
Point boto3 at it with `AWS_ENDPOINT_URL_CODEBUILD`.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from aiohttp import web

from standins.aws_json import AwsJsonStandIn, error_response, json_response

# The documentation example account: never a real one.
ACCOUNT_ID = "123456789012"
FINAL_STATUSES = {"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"}


class FakeCodeBuild(AwsJsonStandIn):
    TARGET_PREFIX = "CodeBuild_20161006."

    def __init__(
        self, *, region: str = "ap-northeast-2", initiator: str = "shipbot-role/bot"
    ) -> None:
        super().__init__()
        self.region = region
        self.initiator = initiator
        self.projects: dict[str, dict[str, Any]] = {}
        self.builds: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[dict[str, Any], str]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}

    # -- scripting ---------------------------------------------------------------------------

    def add_project(self, name: str, *, source_version: str = "main") -> None:
        self.projects[name] = {
            "name": name,
            "arn": f"arn:aws:codebuild:{self.region}:{ACCOUNT_ID}:project/{name}",
            "sourceVersion": source_version,
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            "timeoutInMinutes": 60,
        }

    def update_build(self, build_id: str, **fields: Any) -> dict[str, Any]:
        """Move a build on (status, phase, logs…), as CodeBuild itself would."""
        build = self.builds[build_id]
        build.update(fields)
        if build.get("buildStatus") in FINAL_STATUSES:
            build["buildComplete"] = True
            build.setdefault("endTime", time.time())
        return build

    def start_external_build(
        self,
        project: str,
        *,
        initiator: str = "GitHub-Hookshot/7d2b1f0",
        source_version: str = "pr/42",
    ) -> dict[str, Any]:
        """A build started by a webhook or the console, not through StartBuild from the bot."""
        return self._new_build(
            self.projects[project], {"sourceVersion": source_version}, initiator=initiator
        )

    def advance(self, build_id: str, phase: str) -> dict[str, Any]:
        """Finish the current phase successfully and enter `phase`."""
        build = self.builds[build_id]
        now = time.time()
        current = build["phases"][-1]
        current.update(
            phaseStatus="SUCCEEDED",
            endTime=now,
            durationInSeconds=int(now - current["startTime"]),
            contexts=[{"statusCode": "", "message": ""}],
        )
        build["phases"].append({"phaseType": phase, "startTime": now})
        build["currentPhase"] = phase
        return build

    def finish(
        self,
        build_id: str,
        status: str,
        *,
        failed_phase: str | None = None,
        context: tuple[str, str] | None = None,
        exported: dict[str, str] | None = None,
        commit: str | None = None,
    ) -> dict[str, Any]:
        """End the build; a failed one fails in `failed_phase` with CodeBuild's (code, message).

        `exported` are the buildspec's exported variables (e.g. IMAGE_TAG); `commit` the
        resolved source version.
        """
        build = self.builds[build_id]
        if exported:
            build["exportedEnvironmentVariables"] = [
                {"name": name, "value": value} for name, value in exported.items()
            ]
        if commit:
            build["resolvedSourceVersion"] = commit
        now = time.time()
        current = build["phases"][-1]
        if failed_phase is not None and current["phaseType"] != failed_phase:
            self.advance(build_id, failed_phase)
            current = build["phases"][-1]
        code, message = context or ("", "")
        current.update(
            phaseStatus=status,
            endTime=now,
            durationInSeconds=int(now - current["startTime"]),
            contexts=[{"statusCode": code, "message": message}],
        )
        build["phases"].append({"phaseType": "COMPLETED", "startTime": now})
        return self.update_build(build_id, buildStatus=status, currentPhase="COMPLETED")

    def set_logs(self, build_id: str, group: str, stream: str) -> None:
        self.builds[build_id]["logs"] = {
            "groupName": group,
            "streamName": stream,
            "deepLink": (
                f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
                f"#logEvent:group={group};stream={stream}"
            ),
        }

    # -- EventBridge events, as CodeBuild emits them for the current state ----------------------

    def state_change_event(self, build_id: str) -> dict[str, Any]:
        build = self.builds[build_id]
        detail = self._event_detail(build)
        detail.update(
            {
                "build-status": build["buildStatus"],
                "current-phase": build["currentPhase"],
                "current-phase-context": _phase_context_string(build["phases"][-1]),
            }
        )
        return self._envelope("CodeBuild Build State Change", build, detail)

    def phase_change_event(self, build_id: str) -> dict[str, Any]:
        """The event for the phase that completed last."""
        build = self.builds[build_id]
        completed = [p for p in build["phases"] if "endTime" in p][-1]
        detail = self._event_detail(build)
        detail.update(
            {
                "completed-phase": completed["phaseType"],
                "completed-phase-status": completed.get("phaseStatus", "SUCCEEDED"),
                "completed-phase-duration-seconds": float(completed.get("durationInSeconds", 0)),
                "completed-phase-context": _phase_context_string(completed),
                "completed-phase-start": _event_time(completed["startTime"]),
                "completed-phase-end": _event_time(completed["endTime"]),
            }
        )
        return self._envelope("CodeBuild Build Phase Change", build, detail)

    def _envelope(
        self, detail_type: str, build: dict[str, Any], detail: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.codebuild",
            "account": ACCOUNT_ID,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.region,
            "resources": [build["arn"]],
            "detail": detail,
        }

    def _event_detail(self, build: dict[str, Any]) -> dict[str, Any]:
        environment = build["environment"]
        logs = build.get("logs") or {}
        phases = []
        for phase in build["phases"]:
            item: dict[str, Any] = {
                "start-time": _event_time(phase["startTime"]),
                "phase-type": phase["phaseType"],
            }
            if "endTime" in phase:
                item.update(
                    {
                        "phase-context": [
                            f"{c.get('statusCode', '')}: {c.get('message', '')}"
                            for c in phase.get("contexts", [])
                        ],
                        "end-time": _event_time(phase["endTime"]),
                        "duration-in-seconds": float(phase.get("durationInSeconds", 0)),
                        "phase-status": phase.get("phaseStatus", "SUCCEEDED"),
                    }
                )
            phases.append(item)
        return {
            "project-name": build["projectName"],
            "build-id": build["arn"],
            "additional-information": {
                "cache": {"type": "NO_CACHE"},
                "timeout-in-minutes": float(build["timeoutInMinutes"]),
                "build-complete": bool(build.get("buildComplete")),
                "initiator": build["initiator"],
                "build-start-time": _event_time(build["startTime"]),
                "source": {"location": "https://github.com/example/frontend.git", "type": "GITHUB"},
                "source-version": build["sourceVersion"],
                "artifact": {"location": ""},
                "environment": {
                    "image": environment["image"],
                    "privileged-mode": True,
                    "image-pull-credentials-type": "CODEBUILD",
                    "compute-type": environment["computeType"],
                    "type": environment["type"],
                    "environment-variables": [
                        {"name": v["name"], "type": v.get("type", "PLAINTEXT"), "value": v["value"]}
                        for v in environment.get("environmentVariables", [])
                    ],
                },
                "project-file-system-locations": [],
                "logs": {
                    "group-name": logs.get("groupName"),
                    "stream-name": logs.get("streamName"),
                    "deep-link": logs.get("deepLink", ""),
                }
                if logs
                else {
                    "deep-link": "https://console.aws.amazon.com/cloudwatch/home#logEvent:group=null;stream=null"
                },
                "phases": phases,
                "queued-timeout-in-minutes": 480.0,
                "build-number": float(build["buildNumber"]),
            },
            "version": "1",
        }

    # -- protocol ----------------------------------------------------------------------------

    def _a_StartBuild(self, body: dict[str, Any]) -> web.Response:
        name = body.get("projectName", "")
        project = self.projects.get(name)
        if project is None:
            arn = f"arn:aws:codebuild:{self.region}:{ACCOUNT_ID}:project/{name}"
            return error_response("ResourceNotFoundException", f"Project cannot be found: {arn}")
        token = body.get("idempotencyToken")
        if token:
            seen = self._idempotency.get(token)
            if seen is not None:
                if seen[0] != body:
                    return error_response(
                        "InvalidInputException",
                        "Idempotency token already used with different parameters",
                    )
                return json_response({"build": self.builds[seen[1]]})
        build = self._new_build(project, body)
        if token:
            self._idempotency[token] = (body, build["id"])
        return json_response({"build": build})

    def _new_build(
        self, project: dict[str, Any], body: dict[str, Any], *, initiator: str | None = None
    ) -> dict[str, Any]:
        name = project["name"]
        number = next(self._numbers.setdefault(name, itertools.count(1)))
        build_id = f"{name}:{uuid.uuid4()}"
        now = time.time()
        environment = dict(project["environment"])
        if "imageOverride" in body:
            environment["image"] = body["imageOverride"]
        if "environmentTypeOverride" in body:
            environment["type"] = body["environmentTypeOverride"]
        if "computeTypeOverride" in body:
            environment["computeType"] = body["computeTypeOverride"]
        environment["environmentVariables"] = body.get("environmentVariablesOverride", [])
        build = {
            "id": build_id,
            "arn": f"arn:aws:codebuild:{self.region}:{ACCOUNT_ID}:build/{build_id}",
            "buildNumber": number,
            "startTime": now,
            "currentPhase": "QUEUED",
            "buildStatus": "IN_PROGRESS",
            "sourceVersion": body.get("sourceVersion", project["sourceVersion"]),
            "projectName": name,
            "phases": [
                {
                    "phaseType": "SUBMITTED",
                    "phaseStatus": "SUCCEEDED",
                    "startTime": now,
                    "endTime": now,
                    "durationInSeconds": 0,
                },
                {"phaseType": "QUEUED", "startTime": now},
            ],
            "environment": environment,
            "timeoutInMinutes": body.get("timeoutInMinutesOverride", project["timeoutInMinutes"]),
            "buildComplete": False,
            "initiator": initiator or self.initiator,
        }
        self.builds[build_id] = build
        return build

    def _a_BatchGetBuilds(self, body: dict[str, Any]) -> web.Response:
        ids = body.get("ids", [])
        found = [self.builds[i] for i in ids if i in self.builds]
        missing = [i for i in ids if i not in self.builds]
        return json_response({"builds": found, "buildsNotFound": missing})

    def _a_StopBuild(self, body: dict[str, Any]) -> web.Response:
        build_id = body.get("id", "")
        if build_id not in self.builds:
            return error_response("ResourceNotFoundException", f"Build {build_id} not found")
        build = self.builds[build_id]
        if not build.get("buildComplete"):
            self.update_build(build_id, buildStatus="STOPPED", currentPhase="COMPLETED")
        return json_response({"build": build})

    def _a_ListBuildsForProject(self, body: dict[str, Any]) -> web.Response:
        name = body.get("projectName", "")
        if name not in self.projects:
            return error_response("ResourceNotFoundException", f"Project {name} not found")
        ids = [b["id"] for b in self.builds.values() if b["projectName"] == name]
        ids.sort(key=lambda i: self.builds[i]["startTime"], reverse=True)
        return json_response({"ids": ids[:100]})


def _event_time(epoch: float) -> str:
    """EventBridge's CodeBuild time format: "Dec 1, 2026 10:12:03 AM" (UTC)."""
    moment = time.gmtime(epoch)
    return time.strftime(
        f"%b {moment.tm_mday}, %Y {int(time.strftime('%I', moment))}:%M:%S %p", moment
    )


def _phase_context_string(phase: dict[str, Any]) -> str:
    contexts = phase.get("contexts") or []
    inner = ", ".join(f"{c.get('statusCode', '')}: {c.get('message', '')}" for c in contexts)
    return f"[{inner}]"
