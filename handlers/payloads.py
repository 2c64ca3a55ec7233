"""Pydantic models of what Slack sends us, as Slack names the fields."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class SlashCommand(BaseModel):
    """A slash-command request (form fields; Socket Mode sends the same keys as JSON)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = ""
    user_id: str
    user_name: str | None = None
    channel_id: str | None = None
    team_id: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    api_app_id: str | None = None

    def request_key(self) -> str:
        """Unique per invocation: Slack gives every slash command its own trigger_id."""
        return self.trigger_id or uuid.uuid4().hex


class ActionUser(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    username: str | None = None
    team_id: str | None = None


class ActionChannel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str


class ActionContainer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    message_ts: str | None = None
    channel_id: str | None = None


class BlockAction(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action_id: str
    block_id: str | None = None
    value: str | None = None
    action_ts: str | None = None


class BlockActions(BaseModel):
    """A `block_actions` interactivity payload, as Slack names the fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    user: ActionUser
    channel: ActionChannel | None = None
    container: ActionContainer | None = None
    actions: list[BlockAction]
    response_url: str | None = None
    trigger_id: str | None = None
