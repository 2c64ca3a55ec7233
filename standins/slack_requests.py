"""Requests exactly as Slack sends them to an app: form bodies, v0 signatures, timestamps."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode


def sign(signing_secret: str, body: str, timestamp: int) -> str:
    """Slack's v0 signature of a request body."""
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(
    signing_secret: str, body: str, *, timestamp: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, body, ts),
    }


def slash_command_fields(
    command: str,
    text: str,
    *,
    user_id: str,
    response_url: str,
    channel_id: str = "C0REQUEST01",
    user_name: str = "engineer",
    team_id: str = "T0TEAM001",
    api_app_id: str = "A0APP0001",
) -> dict[str, str]:
    """The form fields of a slash command, with a fresh trigger_id like Slack gives each one."""
    return {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "team_domain": "example",
        "channel_id": channel_id,
        "channel_name": "engineering",
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
    }


def form_body(fields: dict[str, str]) -> str:
    return urlencode(fields)


def interactive_body(payload: dict[str, Any]) -> str:
    """Interactivity requests carry the JSON payload in one form field."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


class SlackAppClient:
    """Sends an app's HTTP endpoint what Slack would send it, correctly signed."""

    def __init__(self, session: Any, events_url: str, signing_secret: str) -> None:
        self._session = session
        self.events_url = events_url
        self._signing_secret = signing_secret

    async def post(
        self,
        body: str,
        *,
        headers: dict[str, str | None] | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST a signed body; `headers` overrides the signed ones (None removes one)."""
        sent = signed_headers(self._signing_secret, body, timestamp=timestamp)
        for name, value in (headers or {}).items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value
        async with self._session.post(self.events_url, data=body, headers=sent) as response:
            return int(response.status), str(await response.text())

    async def action(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Send an interactivity payload (a button click)."""
        return await self.post(interactive_body(payload))

    async def command(
        self, text: str, *, user_id: str, response_url: str, command: str = "/build"
    ) -> tuple[int, dict[str, Any]]:
        """Send a slash command; return the HTTP status and the acknowledgement body."""
        fields = slash_command_fields(command, text, user_id=user_id, response_url=response_url)
        status, body = await self.post(form_body(fields))
        return status, (json.loads(body) if body.startswith("{") else {"text": body})


def block_actions_payload(
    *,
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    block_id: str,
    response_url: str,
    message_blocks: list[dict[str, Any]] | None = None,
    team_id: str = "T0TEAM001",
) -> dict[str, Any]:
    """A `block_actions` payload for a button click, field for field as Slack sends it."""
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": team_id,
        },
        "api_app_id": "A0APP0001",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "team": {"id": team_id, "domain": "example"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "deploys"},
        "message": {
            "type": "message",
            "subtype": "bot_message",
            "text": "deploy request",
            "ts": message_ts,
            "bot_id": "B0BOT0001",
            "blocks": message_blocks or [],
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": value,
                "style": "primary",
                "type": "button",
                "action_ts": now,
            }
        ],
    }
