"""Slack Web API: the one client the bot uses, with slack-sdk's own retry handlers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ShipbotError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


# Errors that retrying will not fix: someone has to invite the bot or fix the channel id.
PERMANENT_POST_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "invalid_blocks"}
)


class SlackPostError(ShipbotError):
    """Slack refused a message; `code` is Slack's error string (e.g. `not_in_channel`)."""

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_POST_ERRORS

    def __init__(self, code: str, channel: str) -> None:
        reasons = {
            "not_in_channel": f"I am not a member of <#{channel}>: invite me with `/invite`",
            "channel_not_found": f"the channel `{channel}` does not exist or I cannot see it",
            "is_archived": f"the channel <#{channel}> is archived",
        }
        super().__init__(reasons.get(code, f"Slack answered `{code}` for channel `{channel}`"))
        self.code = code


class PostedMessage(BaseModel):
    channel: str
    ts: str


def make_web_client(token: str, api_url: str | None) -> AsyncWebClient:
    """The Web API client; honours Slack's 429 Retry-After and retries dropped connections."""
    return AsyncWebClient(
        token=token,
        base_url=api_url or DEFAULT_SLACK_API_URL,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackChat:
    """Posting and updating channel messages."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
    ) -> PostedMessage:
        try:
            response = await self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            raise SlackPostError(str(exc.response.get("error", "unknown")), channel) from exc
        return PostedMessage(channel=str(response["channel"]), ts=str(response["ts"]))

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        try:
            await self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise SlackPostError(str(exc.response.get("error", "unknown")), channel) from exc

    async def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            await self._client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            raise SlackPostError(str(exc.response.get("error", "unknown")), channel) from exc

    async def bot_identity(self) -> str:
        """The bot's user id; raises SlackApiError for a bad token (checked at start-up)."""
        response = await self._client.auth_test()
        return str(response.get("user_id", ""))


class SlackDirectory:
    """Who is in a Slack user group, cached briefly (usergroups.users.list is Tier 2)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = asyncio.Lock()

    async def group_members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        cached = self._cache.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._lock:
            cached = self._cache.get(group_id)
            if cached is not None and self._clock() - cached[0] < self._ttl:
                return cached[1]
            try:
                response = await self._client.usergroups_users_list(usergroup=group_id)
            except SlackApiError as exc:
                code = str(exc.response.get("error", "unknown"))
                raise SlackLookupError(
                    f"I could not read the members of user group <!subteam^{group_id}> ({code})."
                ) from exc
            users: list[Any] = list(response.get("users", []))
            members = frozenset(str(user) for user in users)
            self._cache[group_id] = (self._clock(), members)
            return members

    async def expand(self, principals: list[str]) -> frozenset[str]:
        """User ids as they are; user-group ids (S…) become their members."""
        users = {p for p in principals if not p.startswith("S")}
        for group in (p for p in principals if p.startswith("S")):
            users |= await self.group_members(group)
        return frozenset(users)


class SlackLookupError(ShipbotError):
    """Slack would not tell us something we need (e.g. a user group's members)."""
