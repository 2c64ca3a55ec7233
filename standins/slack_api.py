"""A fake Slack Web API on loopback that records calls and answers like Slack does.

It serves `/api/<method>` (JSON or form bodies, bearer token), `response_url` endpoints, and
Socket Mode (`apps.connections.open` plus a websocket), and can be told to answer errors or
HTTP 429 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from standins.loopback import LoopbackServer

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40000


@dataclass
class SlackCall:
    """One request the fake received: an API method or a `response_url` post."""

    method: str
    params: dict[str, Any]
    token: str | None = None
    at: float = field(default_factory=time.monotonic)
    result: dict[str, Any] = field(default_factory=dict)  # what the fake answered

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return list(blocks)

    def all_text(self) -> str:
        """The text and every text inside the blocks, for asserting on what a user reads."""
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)


@dataclass
class _Scripted:
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0


class FakeSlack(LoopbackServer):
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        bot_user_id: str = "UBOT0001",
        team_id: str = "T0TEAM001",
        usergroups: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.usergroups = dict(usergroups or {})
        self.calls: list[SlackCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._scripted: dict[str, list[_Scripted]] = {}
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._socket_connected = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{hook}", self._response_url)
        app.router.add_get("/socket-mode", self._socket_mode)

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        await super().stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, hook: str | None = None) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{hook or uuid.uuid4().hex}"

    # -- scripting ---------------------------------------------------------------------------

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        self._scripted.setdefault(method, []).extend(_Scripted(error=error) for _ in range(times))

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer HTTP 429 with `Retry-After`."""
        self._scripted.setdefault(method, []).extend(
            _Scripted(retry_after=retry_after) for _ in range(times)
        )

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        self._scripted.setdefault(method, []).extend(_Scripted(delay=seconds) for _ in range(times))

    # -- inspection --------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[SlackCall], bool] | None = None,
        *,
        timeout: float = 5.0,
        count: int = 1,
    ) -> SlackCall:
        """Wait until `count` calls of `method` matching `predicate` arrived; return the last."""

        def matching() -> list[SlackCall]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(matching()) >= count), timeout
                )
            except TimeoutError:
                seen = [f"{c.method}: {c.text[:80]!r}" for c in self.calls]
                raise AssertionError(
                    f"no {count} matching {method} call(s) within {timeout}s; saw {seen}"
                ) from None
        return matching()[count - 1]

    # -- Web API -----------------------------------------------------------------------------

    async def _record(self, call: SlackCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        token = _bearer(request) or params.pop("token", None)
        call = SlackCall(method=method, params=params, token=token)
        await self._record(call)

        scripted = self._scripted.get(method)
        if scripted:
            step = scripted.pop(0)
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.retry_after is not None:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(step.retry_after)},
                )
            if step.error is not None:
                return web.json_response({"ok": False, "error": step.error})

        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token is None:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        body: dict[str, Any] = handler(params)
        call.result = body
        return web.json_response(body)

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://example.slack.com/",
            "team": "Example",
            "user": "shipbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT0001",
            "is_enterprise_install": False,
        }

    def _check_message(self, params: dict[str, Any]) -> str | None:
        if not params.get("channel"):
            return "channel_not_found"
        text = params.get("text")
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not text and not blocks:
            return "no_text"
        if text and len(str(text)) > MAX_TEXT:
            return "msg_too_long"
        if blocks:
            if len(blocks) > MAX_BLOCKS:
                return "invalid_blocks"
            for block in blocks:
                section = block.get("text") if isinstance(block, dict) else None
                if isinstance(section, dict) and len(str(section.get("text", ""))) > (
                    MAX_SECTION_TEXT
                ):
                    return "invalid_blocks"
        return None

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if (error := self._check_message(params)) is not None:
            return {"ok": False, "error": error}
        channel = str(params["channel"])
        ts = f"{1700000000 + next(self._ts)}.000100"
        message = {
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": params.get("blocks", []),
            "thread_ts": params.get("thread_ts"),
            "user": self.bot_user_id,
        }
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if (error := self._check_message(params)) is not None:
            return {"ok": False, "error": error}
        key = (str(params["channel"]), str(params.get("ts")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key].update(text=params.get("text", ""), blocks=params.get("blocks", []))
        return {"ok": True, "channel": key[0], "ts": key[1], "text": params.get("text", "")}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if (error := self._check_message(params)) is not None:
            return {"ok": False, "error": error}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = str(params.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.usergroups[group]}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket-mode"}

    # -- response_url ------------------------------------------------------------------------

    async def _response_url(self, request: web.Request) -> web.Response:
        params = await _read_params(request)
        params["hook"] = request.match_info["hook"]
        await self._record(SlackCall(method="response_url", params=params))
        return web.Response(text="ok")

    # -- Socket Mode -------------------------------------------------------------------------

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0APP0001"},
            }
        )
        self._socket_connected.set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                future = self._socket_acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    async def wait_for_socket(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._socket_connected.wait(), timeout)

    async def send_envelope(
        self, envelope_type: str, payload: dict[str, Any], *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Deliver a Socket Mode envelope to the connected app and return its acknowledgement."""
        await self.wait_for_socket(timeout)
        envelope_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._socket_acks[envelope_id] = future
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "accepts_response_payload": envelope_type != "events_api",
                "payload": payload,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await asyncio.wait_for(future, timeout)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else None


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    raw = await request.text()
    if not raw:
        return params
    if request.content_type == "application/json":
        body = json.loads(raw)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(parse_qsl(raw, keep_blank_values=True))
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params
