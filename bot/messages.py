"""Block Kit messages the bot posts; pure builders returning (text, blocks)."""

from __future__ import annotations

from typing import Any

from bot.config import EnvironmentsFile
from bot.records import BuildRecord

Blocks = list[dict[str, Any]]
Message = tuple[str, Blocks]

# Slack cuts section text at 3,000 characters.
SECTION_LIMIT = 3000


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*elements: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": element} for element in elements],
    }


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def help_message(environments: EnvironmentsFile) -> Message:
    lines = []
    for name, env in sorted(environments.environments.items()):
        lines.append(
            f"• `{name}` — project `{escape(env.build.project)}`, default ref "
            f"`{escape(env.build.source_version)}`, posts to <#{env.channel}>"
        )
    listed = "\n".join(lines)
    usage = (
        "*Usage*\n"
        "`/build <environment>` — build the environment's default ref\n"
        "`/build <environment> <ref>` — build a branch, tag or commit\n"
        "`/build help` — this message"
    )
    text = f"{usage}\n\n*Environments*\n{listed}"
    return text, [_section(usage), *_sections(["*Environments*", *lines])]


def _sections(lines: list[str]) -> Blocks:
    """As many sections as the lines need, so nothing is cut at Slack's section limit."""
    blocks: Blocks = []
    chunk: list[str] = []
    for line in lines:
        if chunk and len("\n".join([*chunk, line])) > SECTION_LIMIT:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return blocks


def build_started_message(record: BuildRecord) -> Message:
    """The channel's message for a build started from Slack."""
    number = f" #{record.build_number}" if record.build_number is not None else ""
    who = f"<@{record.requested_by}>" if record.requested_by else escape(record.initiator or "?")
    text = (
        f"{who} started build{number} of *{escape(record.project)}* "
        f"(`{record.environment}`) at `{escape(record.source_version)}`"
    )
    return text, [
        _section(f":hammer_and_wrench: {text}"),
        _context(
            f"Status: *{record.status.replace('_', ' ').lower()}*",
            f"<{record.console_url}|Open in the CodeBuild console>",
        ),
    ]


def build_started_ephemeral(record: BuildRecord, posted_to_channel: bool) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    where = f" Updates go to <#{record.channel}>." if posted_to_channel else ""
    return (
        f"Started build{number} of `{escape(record.project)}` at "
        f"`{escape(record.source_version)}`: <{record.console_url}|console>.{where}"
    )


def build_starting_ack(environment: str, project: str, ref: str) -> str:
    return f"Starting a build of `{escape(project)}` (`{environment}`) at `{escape(ref)}`…"


def channel_post_failed(record: BuildRecord, reason: str) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    return (
        f"Build{number} of `{escape(record.project)}` started (<{record.console_url}|console>), "
        f"but I could not post in the channel: {reason}."
    )


def error_message(user_message: str) -> str:
    return f":warning: {user_message}"


def build_already_started(record: BuildRecord) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    return (
        f"That request already started build{number} of `{escape(record.project)}`: "
        f"<{record.console_url}|console>."
    )
