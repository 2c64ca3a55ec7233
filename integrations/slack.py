"""Slack Web API: the one client the bot uses, with slack-sdk's own retry handlers."""

from __future__ import annotations

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

    async def bot_identity(self) -> str:
        """The bot's user id; raises SlackApiError for a bad token (checked at start-up)."""
        response = await self._client.auth_test()
        return str(response.get("user_id", ""))
