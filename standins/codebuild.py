"""A CodeBuild stand-in speaking the real AWS JSON 1.1 protocol, for what moto lacks.

moto's CodeBuild drops image/type/env-var overrides and finishes every build at once. This one
keeps the StartBuild requests it received, honours `idempotencyToken`, keeps builds running
until a test or the sandbox moves them on, and can answer AWS errors or answer slowly.
Point boto3 at it with `AWS_ENDPOINT_URL_CODEBUILD`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from standins.loopback import LoopbackServer

TARGET_PREFIX = "CodeBuild_20161006."
# The documentation example account: never a real one.
ACCOUNT_ID = "123456789012"
FINAL_STATUSES = {"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"}


@dataclass
class _Scripted:
    error_code: str | None = None
    message: str = ""
    status: int = 400
    delay: float = 0.0


class FakeCodeBuild(LoopbackServer):
    def __init__(
        self, *, region: str = "ap-northeast-2", initiator: str = "shipbot-role/bot"
    ) -> None:
        super().__init__()
        self.region = region
        self.initiator = initiator
        self.projects: dict[str, dict[str, Any]] = {}
        self.builds: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._idempotency: dict[str, tuple[dict[str, Any], str]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}
        self._scripted: dict[str, list[_Scripted]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._dispatch)

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

    def fail_next(
        self, action: str, error_code: str, message: str = "", *, status: int = 400
    ) -> None:
        """The next call of `action` (e.g. "StartBuild") answers this AWS error."""
        self._scripted.setdefault(action, []).append(
            _Scripted(error_code=error_code, message=message, status=status)
        )

    def delay_next(self, action: str, seconds: float) -> None:
        self._scripted.setdefault(action, []).append(_Scripted(delay=seconds))

    def requests_for(self, action: str) -> list[dict[str, Any]]:
        return [body for name, body in self.requests if name == action]

    def update_build(self, build_id: str, **fields: Any) -> dict[str, Any]:
        """Move a build on (status, phase, logs…), as CodeBuild itself would."""
        build = self.builds[build_id]
        build.update(fields)
        if build.get("buildStatus") in FINAL_STATUSES:
            build["buildComplete"] = True
            build.setdefault("endTime", time.time())
        return build

    # -- protocol ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        action = target.removeprefix(TARGET_PREFIX)
        body = json.loads(await request.text() or "{}")
        self.requests.append((action, body))
        scripted = self._scripted.get(action)
        if scripted:
            step = scripted.pop(0)
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.error_code is not None:
                return _error(step.error_code, step.message, step.status)
        handler = getattr(self, "_a_" + action, None)
        if handler is None:
            return _error("UnknownOperationException", f"{action} is not supported here")
        result: web.Response = handler(body)
        return result

    def _a_StartBuild(self, body: dict[str, Any]) -> web.Response:
        name = body.get("projectName", "")
        project = self.projects.get(name)
        if project is None:
            arn = f"arn:aws:codebuild:{self.region}:{ACCOUNT_ID}:project/{name}"
            return _error("ResourceNotFoundException", f"Project cannot be found: {arn}")
        token = body.get("idempotencyToken")
        if token:
            seen = self._idempotency.get(token)
            if seen is not None:
                if seen[0] != body:
                    return _error(
                        "InvalidInputException",
                        "Idempotency token already used with different parameters",
                    )
                return _json({"build": self.builds[seen[1]]})
        build = self._new_build(project, body)
        if token:
            self._idempotency[token] = (body, build["id"])
        return _json({"build": build})

    def _new_build(self, project: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
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
            "initiator": self.initiator,
        }
        self.builds[build_id] = build
        return build

    def _a_BatchGetBuilds(self, body: dict[str, Any]) -> web.Response:
        ids = body.get("ids", [])
        found = [self.builds[i] for i in ids if i in self.builds]
        missing = [i for i in ids if i not in self.builds]
        return _json({"builds": found, "buildsNotFound": missing})

    def _a_StopBuild(self, body: dict[str, Any]) -> web.Response:
        build_id = body.get("id", "")
        if build_id not in self.builds:
            return _error("ResourceNotFoundException", f"Build {build_id} not found")
        build = self.builds[build_id]
        if not build.get("buildComplete"):
            self.update_build(build_id, buildStatus="STOPPED", currentPhase="COMPLETED")
        return _json({"build": build})

    def _a_ListBuildsForProject(self, body: dict[str, Any]) -> web.Response:
        name = body.get("projectName", "")
        if name not in self.projects:
            return _error("ResourceNotFoundException", f"Project {name} not found")
        ids = [b["id"] for b in self.builds.values() if b["projectName"] == name]
        ids.sort(key=lambda i: self.builds[i]["startTime"], reverse=True)
        return _json({"ids": ids[:100]})


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/x-amz-json-1.1")


def _error(code: str, message: str, status: int = 400) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"__type": code, "message": message}),
        content_type="application/x-amz-json-1.1",
    )
