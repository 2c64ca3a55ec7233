"""Block Kit builders: what a user reads, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.config import parse_environments
from bot.messages import (
    SECTION_LIMIT,
    build_started_ephemeral,
    escape,
    help_message,
)
from bot.records import BuildRecord

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def record(**changes: object) -> BuildRecord:
    base = BuildRecord(
        build_id="frontend-dev:0a1b",
        build_arn="arn:aws:codebuild:ap-northeast-2:123456789012:build/frontend-dev:0a1b",
        build_number=42,
        project="frontend-dev",
        environment="dev",
        source_version="feature/<login>",
        requested_by="U0ENGINEER1",
        channel="C0DEV",
        console_url="https://console.example/build",
        created_at=NOW,
        updated_at=NOW,
    )
    return base.model_copy(update=changes)


def test_ephemeral_confirmation_points_to_channel() -> None:
    assert "<#C0DEV>" in build_started_ephemeral(record())


def test_help_lists_every_environment_within_section_limits() -> None:
    many = "\n".join(
        f"  env{i}:\n    channel: C0DEV\n    build: {{project: p{i}}}\n    image: {{repository: r}}"
        for i in range(200)
    )
    environments = parse_environments("environments:\n" + many, "test")

    text, blocks = help_message(environments)

    assert "`env199`" in text
    shown = "\n".join(b["text"]["text"] for b in blocks)
    assert all(f"`env{i}`" in shown for i in range(200))
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks)
    assert len(blocks) <= 50


def test_escape_only_touches_slack_control_characters() -> None:
    assert escape("a<b>&c `d`") == "a&lt;b&gt;&amp;c `d`"
