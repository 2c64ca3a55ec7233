"""`/deploy` and the Approve / Reject buttons of deploy requests."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.approvals import APPROVE_ACTION, REJECT_ACTION
from bot.deploy_commands import (
    USAGE,
    DeployHelp,
    DeployHistory,
    DeployImage,
    parse_deploy_command,
)
from bot.errors import UsageError
from bot.messages import deploy_history_message, error_message
from bot.records import DeployRequest
from bot.services import Services
from handlers.deployments import Deployments
from handlers.errors import reporting_errors
from handlers.payloads import BlockActions, SlashCommand

HISTORY_LIMIT = 10


class DeployCommand:
    def __init__(self, services: Services, deployments: Deployments) -> None:
        self._services = services
        self._deployments = deployments

    async def acknowledge(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        slash = SlashCommand.model_validate(command)
        try:
            parsed = parse_deploy_command(slash.text, self._services.environments)
        except UsageError as exc:
            await ack(text=error_message(exc.user_message))
            return
        if isinstance(parsed, DeployHelp):
            await ack(text=USAGE)
        elif isinstance(parsed, DeployHistory):
            requests = await self._services.store.recent(
                DeployRequest, parsed.environment, HISTORY_LIMIT
            )
            text, blocks = deploy_history_message(parsed.environment, requests)
            await ack(text=text, blocks=blocks)
        else:
            await ack(text=f"Looking up `{parsed.tag or parsed.digest}` in ECR…")

    async def after_ack(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        slash = SlashCommand.model_validate(command)
        try:
            parsed = parse_deploy_command(slash.text, self._services.environments)
        except UsageError:
            return
        if not isinstance(parsed, DeployImage):
            return
        environment = self._services.environments.environments[parsed.environment]
        repository = environment.image.repository
        ecr = self._services.ecr
        if parsed.digest is not None:
            image = await ecr.image_by_digest(repository, parsed.digest)
        else:
            image = await ecr.find_image(repository, [parsed.tag or ""])
        if image is None:
            recent = await ecr.recent_images(repository, 5)
            listed = ", ".join(f"`{i.tag}`" for i in recent if i.tag) or "none"
            raise UsageError(
                f"`{parsed.tag or parsed.digest}` is not in ECR repository `{repository}`. "
                f"Recent tags: {listed}."
            )
        request = await self._deployments.propose(
            parsed.environment, image, origin="redeploy", requested_by=slash.user_id
        )
        await respond(
            text=f"Deploy request posted in <#{request.channel}>; it needs "
            f"{request.required_approvals} approval(s)."
            if request.status == "pending"
            else f"Deploy request posted in <#{request.channel}>, but it cannot be approved: "
            + "; ".join(request.blockers)
        )


class DeployButtons:
    def __init__(self, services: Services, deployments: Deployments) -> None:
        self._services = services
        self._deployments = deployments

    async def acknowledge(self, ack: AsyncAck) -> None:
        await ack()

    async def on_click(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        payload = BlockActions.model_validate(body)
        for action in payload.actions:
            if action.action_id not in (APPROVE_ACTION, REJECT_ACTION) or not action.value:
                continue
            outcome = await self._deployments.on_click(
                action.action_id, action.value, payload.user.id
            )
            channel = payload.channel.id if payload.channel else None
            if channel:
                await self._services.chat.post_ephemeral(channel, payload.user.id, outcome.message)
            else:
                await respond(text=outcome.message, replace_original=False)


def register(app: AsyncApp, services: Services, deployments: Deployments) -> None:
    command = DeployCommand(services, deployments)
    app.command("/deploy")(ack=command.acknowledge, lazy=[reporting_errors(command.after_ack)])
    buttons = DeployButtons(services, deployments)
    for action_id in (APPROVE_ACTION, REJECT_ACTION):
        app.action(action_id)(ack=buttons.acknowledge, lazy=[reporting_errors(buttons.on_click)])
