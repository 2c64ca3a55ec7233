"""Block Kit messages the bot posts; pure builders returning (text, blocks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.approvals import APPROVE_ACTION, REJECT_ACTION
from bot.config import EnvironmentsFile
from bot.events import PHASE_ORDER
from bot.records import BuildRecord, DeployRequest

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
        "`/build status [environment]` — the latest builds, with state and links\n"
        "`/build cancel <build number or id>` — stop a running build\n"
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


def build_started_ephemeral(record: BuildRecord) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    where = f" Updates go to <#{record.channel}>."
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


_STATUS_LABELS = {
    "IN_PROGRESS": (":hourglass_flowing_sand:", "in progress"),
    "SUCCEEDED": (":white_check_mark:", "succeeded"),
    "FAILED": (":x:", "failed"),
    "FAULT": (":boom:", "failed (CodeBuild fault)"),
    "TIMED_OUT": (":alarm_clock:", "timed out"),
    "STOPPED": (":octagonal_sign:", "stopped"),
}

# Phases shown in the progress line, in CodeBuild's order (not SUBMITTED or COMPLETED).
_SHOWN_PHASES = PHASE_ORDER[1:-1]


def status_label(status: str) -> tuple[str, str]:
    return _STATUS_LABELS.get(status, (":grey_question:", status.replace("_", " ").lower()))


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _progress(record: BuildRecord) -> str | None:
    """`queued → provisioning → *build* ⏳`, or None when there is nothing useful to show."""
    final = record.status != "IN_PROGRESS"
    stop_at = record.failed_phase if final else record.current_phase
    if stop_at not in _SHOWN_PHASES and not (final and record.status == "SUCCEEDED"):
        return None
    marker = ":x:" if final else ":hourglass_flowing_sand:"
    parts = []
    for phase in _SHOWN_PHASES:
        if phase == stop_at:
            parts.append(f"*{phase.lower()}* {marker}")
            break
        parts.append(phase.lower())
    return " → ".join(parts)


def build_status_message(record: BuildRecord) -> Message:
    """The one channel message per build, updated in place as the build moves on."""
    emoji, label = status_label(record.status)
    number = f" #{record.build_number}" if record.build_number is not None else ""
    who = f"<@{record.requested_by}>" if record.requested_by else escape(record.initiator or "?")
    head = (
        f"{emoji} Build{number} of *{escape(record.project)}* (`{record.environment}`) "
        f"at `{escape(record.source_version)}`: *{label}*"
    )
    context = [f"Started by {who}"]
    if record.started_at and record.ended_at:
        context.append(
            f"took {format_duration((record.ended_at - record.started_at).total_seconds())}"
        )
    context.append(f"<{record.console_url}|CodeBuild console>")
    if record.log_link:
        context.append(f"<{record.log_link}|full log>")
    text = f"Build{number} of {record.project} ({record.environment}): {label}"
    progress = _progress(record)
    blocks = [_section(head), *([_section(progress)] if progress else []), _context(*context)]
    return text, blocks


def build_announced_message(record: BuildRecord) -> Message:
    """The first message of a build: who started it, then its live status."""
    if record.requested_by:
        return build_status_message(record)
    text, blocks = build_status_message(record)
    started_by = escape(record.initiator or "someone outside Slack")
    intro = f":satellite_antenna: A build was started outside Slack by `{started_by}`."
    return text, [_section(intro), *blocks]


MAX_EXCERPT_LINES = 30
MAX_EXCERPT_LINE = 300


def code_block(lines: list[str], limit: int = SECTION_LIMIT - 20) -> str:
    """Lines in a code block that fits a section: long lines cut, oldest lines dropped first."""
    cut = [
        (line if len(line) <= MAX_EXCERPT_LINE else line[: MAX_EXCERPT_LINE - 1] + "…")
        for line in lines[-MAX_EXCERPT_LINES:]
    ]
    # Three backticks inside would end the block early.
    cut = [escape(line.replace("```", "'''")) for line in cut]
    while cut and len("\n".join(cut)) + 8 > limit:
        cut.pop(0)
    return "```\n" + "\n".join(cut) + "\n```" if cut else "_(no log lines)_"


def failure_explanation_message(
    record: BuildRecord,
    *,
    category: str,
    title: str,
    hint: str,
    excerpt: list[str],
    log_note: str | None = None,
) -> Message:
    """The threaded reply that says why a build failed and what to do about it."""
    number = f" #{record.build_number}" if record.build_number is not None else ""
    head = f":mag: *{escape(title)}* (`{category}`)"
    where = []
    if record.failed_phase:
        where.append(f"Failed phase: *{record.failed_phase.lower()}*")
    if record.failed_phase_context:
        where.append(f"`{escape(record.failed_phase_context[:500])}`")
    blocks = [_section(head)]
    if where:
        blocks.append(_section(" — ".join(where)))
    blocks.append(_section(code_block(excerpt)))
    blocks.append(_section(f":bulb: {escape(hint)}"))
    links = [f"<{record.console_url}|CodeBuild console>"]
    if record.log_link:
        links.insert(0, f"<{record.log_link}|Full log>")
    if log_note:
        links.append(escape(log_note))
    blocks.append(_context(*links))
    text = f"Build{number} of {record.project} failed: {title} ({category})"
    return text, blocks


def build_list_message(records_by_environment: dict[str, list[BuildRecord]]) -> Message:
    """`/build status`: the latest builds per environment, with state and links."""
    blocks: Blocks = []
    lines_text = []
    for environment, records in records_by_environment.items():
        lines = [f"*{environment}*"]
        if not records:
            lines.append("_no builds yet_")
        for record in records:
            emoji, label = status_label(record.status)
            number = f"#{record.build_number}" if record.build_number is not None else "#?"
            phase = (
                f" ({record.current_phase.lower()})"
                if record.status == "IN_PROGRESS" and record.current_phase
                else ""
            )
            who = (
                f"<@{record.requested_by}>"
                if record.requested_by
                else escape(record.initiator or "?")
            )
            took = ""
            if record.started_at and record.ended_at:
                seconds = (record.ended_at - record.started_at).total_seconds()
                took = f", {format_duration(seconds)}"
            lines.append(
                f"{emoji} <{record.console_url}|{number}> `{escape(record.source_version)}` "
                f"{label}{phase}{took} — {who}"
            )
        lines_text.extend(lines)
        blocks.extend(_sections(lines))
    return "\n".join(lines_text), blocks[:50]


def cancel_ack(target: str) -> str:
    return f"Stopping build `{escape(target)}`…"


def build_cancelled(record: BuildRecord, *, stopped: bool) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    name = f"build{number} of `{escape(record.project)}` (`{record.environment}`)"
    if stopped:
        return f"Stopped {name}."
    return f"Asked CodeBuild to stop {name}; its message in <#{record.channel}> will show it."


def build_already_finished(record: BuildRecord) -> str:
    number = f" #{record.build_number}" if record.build_number is not None else ""
    _, label = status_label(record.status)
    return f"Build{number} of `{escape(record.project)}` already {label}; nothing to stop."


# -- deploys --------------------------------------------------------------------------------

_ARCH_MARK = {"match": ":white_check_mark:", "mismatch": ":x:", "unknown": ":grey_question:"}
_RESULT_MARK = {
    "Pending": ":hourglass:",
    "InProgress": ":hourglass_flowing_sand:",
    "Delayed": ":hourglass:",
    "Success": ":white_check_mark:",
    "Failed": ":x:",
    "TimedOut": ":alarm_clock:",
    "ExecutionTimedOut": ":alarm_clock:",
    "DeliveryTimedOut": ":electric_plug:",
    "Undeliverable": ":electric_plug:",
    "Terminated": ":octagonal_sign:",
    "Cancelled": ":octagonal_sign:",
    "Cancelling": ":octagonal_sign:",
}


def _slack_date(moment: datetime) -> str:
    """A date Slack shows in each reader's own time zone."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _principal(principal: str) -> str:
    return f"<!subteam^{principal}>" if principal.startswith("S") else f"<@{principal}>"


def _deploy_summary(request: DeployRequest) -> list[str]:
    tag = f"`{escape(request.tag)}`" if request.tag else "_(no tag)_"
    lines = [
        f"*Image:* `{escape(request.repository)}` {tag} — digest `{request.short_digest}`",
    ]
    origin = []
    if request.build_number is not None:
        origin.append(f"build #{request.build_number}")
    if request.commit:
        origin.append(f"commit `{escape(request.commit[:12])}`")
    if origin:
        lines.append("*From:* " + ", ".join(origin))
    if request.instances:
        shown = ", ".join(
            f"{escape(i.name or i.instance_id)} (`{i.instance_id}`, {i.architecture}"
            + (f", SSM {i.ssm_ping}" if i.ssm_ping and i.ssm_ping != "Online" else "")
            + ")"
            for i in request.instances[:10]
        )
        more = f" and {len(request.instances) - 10} more" if len(request.instances) > 10 else ""
        lines.append(f"*Targets:* {len(request.instances)} instance(s): {shown}{more}")
    else:
        lines.append("*Targets:* none found")
    mark = _ARCH_MARK[request.architecture_verdict]
    lines.append(f"*Architecture:* {mark} {escape(request.architecture_detail)}")
    if request.requested_by:
        lines.append(f"*Requested by:* <@{request.requested_by}>")
    return lines


def deploy_request_message(request: DeployRequest) -> Message:
    """The deploy request: what would go where, who must approve, and its buttons or outcome."""
    head = f":rocket: *Deploy `{escape(request.repository)}` to `{request.environment}`*" + (
        " (redeploy / rollback)" if request.origin == "redeploy" else ""
    )
    lines = _deploy_summary(request)
    who = ", ".join(_principal(p) for p in request.approvers)
    blocks: Blocks = [_section(head), _section("\n".join(lines))]
    if request.status == "pending":
        approved = ", ".join(f"<@{a.user}>" for a in request.approvals) or "nobody yet"
        self_note = "" if request.allow_self_approval else " (not the requester)"
        blocks.append(
            _section(
                f"*Needs:* {request.required_approvals} approval(s) from {who}{self_note}. "
                f"Approved by: {approved}.\n*Expires:* {_slack_date(request.expires_at)}"
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"deploy:{request.request_id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": request.request_id,
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION,
                        "text": {"type": "plain_text", "text": "Reject"},
                        "style": "danger",
                        "value": request.request_id,
                    },
                ],
            }
        )
    else:
        blocks.append(_context(deploy_outcome(request)))
    text = f"Deploy {request.repository}@{request.short_digest} to {request.environment}: " + (
        "waiting for approval" if request.status == "pending" else request.status
    )
    return text, blocks


def deploy_outcome(request: DeployRequest) -> str:
    """The line that replaces the buttons once the request is decided."""
    when = f" at {_slack_date(request.decided_at)}" if request.decided_at else ""
    approvers = ", ".join(f"<@{a.user}>" for a in request.approvals)
    status = request.status
    if status == "blocked":
        return ":no_entry: Cannot be deployed: " + "; ".join(escape(b) for b in request.blockers)
    if status == "rejected":
        return f":no_entry_sign: Rejected by <@{request.decided_by}>{when}."
    if status == "expired":
        return f":hourglass: Expired{when} without enough approvals."
    if status == "superseded":
        return ":arrows_counterclockwise: Superseded by a newer deploy request."
    if status in ("approved", "deploying"):
        return f":white_check_mark: Approved by {approvers}{when}; deploying…"
    if status == "succeeded":
        return f":white_check_mark: Approved by {approvers}{when}; deployed."
    reason = f" ({escape(request.failure)})" if request.failure else ""
    return f":x: Approved by {approvers}{when}; the deployment failed{reason}."


def deploy_results_message(request: DeployRequest) -> Message:
    """Per-instance progress of a deployment, one message updated in place."""
    lines = [f"*Deploying* `{escape(request.repository)}@{request.short_digest}`:"]
    if request.failure and not request.results:
        lines.append(f":x: {escape(request.failure)}")
    for result in request.results:
        mark = _RESULT_MARK.get(result.status, ":grey_question:")
        name = escape(result.name or result.instance_id)
        detail = f" — {escape(result.detail)}" if result.detail else ""
        cause = (
            f" — *{escape(result.cause_title or result.cause)}* (`{result.cause}`)"
            if result.cause
            else ""
        )
        lines.append(f"{mark} {name} (`{result.instance_id}`): {result.status}{detail}{cause}")
    blocks: Blocks = [*_sections(lines)]
    for result in request.results:
        if result.stderr_tail:
            blocks.append(
                _section(f"`{result.instance_id}` stderr:\n" + code_block(result.stderr_tail, 1500))
            )
    done = sum(r.status == "Success" for r in request.results)
    text = f"Deploy to {request.environment}: {done}/{len(request.results)} instance(s) done"
    return text, blocks[:50]


def deploy_history_message(environment: str, requests: list[DeployRequest]) -> Message:
    lines = [f"*Deploys to `{environment}`* (newest first)"]
    if not requests:
        lines.append("_none yet_")
    for request in requests:
        approvers = ", ".join(f"<@{a.user}>" for a in request.approvals) or "—"
        by = f"<@{request.requested_by}>" if request.requested_by else "—"
        tag = f" `{escape(request.tag)}`" if request.tag else ""
        lines.append(
            f"• {_slack_date(request.created_at)} `{escape(request.repository)}`{tag} "
            f"`{request.short_digest}` — {request.status}; requested by {by}; "
            f"approved by {approvers}"
        )
    return "\n".join(lines), _sections(lines)


def no_image_message(record: BuildRecord, repository: str, tags: list[str]) -> Message:
    """Said under a successful build when there is nothing to deploy."""
    looked = ", ".join(f"`{escape(t)}`" for t in tags) or "no tag (no IMAGE_TAG, no commit)"
    text = (
        f":grey_question: No image of this build was found in ECR repository "
        f"`{escape(repository)}` (looked for {looked}), so there is nothing to deploy. "
        "Export `IMAGE_TAG` from the buildspec (`env.exported-variables`) or tag the image "
        "with the commit."
    )
    return text, [_section(text)]


def deploy_unavailable_message(reason: str) -> Message:
    text = f":warning: I could not prepare a deploy of this build: {escape(reason)}"
    return text, [_section(text)]
