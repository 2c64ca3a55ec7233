"""The AWS JSON 1.1 protocol on loopback: what the CodeBuild and SSM stand-ins share.

boto3 sends `POST /` with `X-Amz-Target: <prefix>.<Action>` and a JSON body; errors come back
as HTTP 400 with `{"__type": code, "message": …}`. Stand-ins add `_a_<Action>` handlers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from standins.loopback import LoopbackServer

CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass
class _Scripted:
    error_code: str | None = None
    message: str = ""
    status: int = 400
    delay: float = 0.0


class AwsJsonStandIn(LoopbackServer):
    TARGET_PREFIX: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._scripted: dict[str, list[_Scripted]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._dispatch)

    def fail_next(
        self, action: str, error_code: str, message: str = "", *, status: int = 400
    ) -> None:
        """The next call of `action` (e.g. "StartBuild") answers this AWS error."""
        self._scripted.setdefault(action, []).append(
            _Scripted(error_code=error_code, message=message, status=status)
        )

    def delay_next(self, action: str, seconds: float) -> None:
        """The next call of `action` answers only after `seconds`."""
        self._scripted.setdefault(action, []).append(_Scripted(delay=seconds))

    def requests_for(self, action: str) -> list[dict[str, Any]]:
        return [body for name, body in self.requests if name == action]

    def received(self, action: str, body: dict[str, Any]) -> None:
        """Called as each request arrives, before any scripted answer (for timing)."""

    async def _dispatch(self, request: web.Request) -> web.Response:
        action = request.headers.get("X-Amz-Target", "").removeprefix(self.TARGET_PREFIX)
        body = json.loads(await request.text() or "{}")
        self.received(action, body)
        self.requests.append((action, body))
        scripted = self._scripted.get(action)
        if scripted:
            step = scripted.pop(0)
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.error_code is not None:
                return error_response(step.error_code, step.message, step.status)
        handler = getattr(self, "_a_" + action, None)
        if handler is None:
            return error_response("UnknownOperationException", f"{action} is not supported here")
        result: web.Response = handler(body)
        return result


def json_response(body: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(body), content_type=CONTENT_TYPE)


def error_response(code: str, message: str, status: int = 400) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"__type": code, "message": message}),
        content_type=CONTENT_TYPE,
    )
