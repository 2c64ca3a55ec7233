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
