"""Block Kit builders: what a user reads, within Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.config import parse_environments
from bot.messages import (
    SECTION_LIMIT,
    build_started_ephemeral,
    build_started_message,
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


def test_build_started_says_who_what_where_and_links() -> None:
    text, blocks = build_started_message(record())

    assert text == (
        "<@U0ENGINEER1> started build #42 of *frontend-dev* (`dev`) at `feature/&lt;login&gt;`"
    )
    rendered = json.dumps(blocks)
    assert "<https://console.example/build|Open in the CodeBuild console>" in rendered
    assert "in progress" in rendered


def test_build_started_by_someone_outside_slack_names_the_initiator() -> None:
    text, _ = build_started_message(record(requested_by=None, initiator="GitHub-Hookshot/abc"))

    assert text.startswith("GitHub-Hookshot/abc started build #42")


def test_ephemeral_confirmation_points_to_channel() -> None:
    assert "<#C0DEV>" in build_started_ephemeral(record(), posted_to_channel=True)
    assert "<#C0DEV>" not in build_started_ephemeral(record(), posted_to_channel=False)


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
