"""`/build`: start an arm64 CodeBuild build and announce it in the environment's channel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.builds import (
    HelpCommand,
    StartBuildCommand,
    build_console_url,
    build_request,
    parse_build_command,
)
from bot.errors import StoreConflictError, UsageError
from bot.messages import (
    build_already_started,
    build_started_ephemeral,
    build_starting_ack,
    channel_post_failed,
    error_message,
    help_message,
)
from bot.records import BuildRecord
from bot.services import Services
from handlers.build_status import BuildTracker
from handlers.errors import reporting_errors
from handlers.payloads import SlashCommand
from integrations.slack import SlackPostError


class BuildCommand:
    def __init__(self, services: Services, tracker: BuildTracker) -> None:
        self._services = services
        self._tracker = tracker

    async def acknowledge(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        """Answer within Slack's three seconds, before any AWS call: usage, help or 'starting'."""
        slash = SlashCommand.model_validate(command)
        environments = self._services.environments
        try:
            parsed = parse_build_command(slash.text, environments)
        except UsageError as exc:
            await ack(text=error_message(exc.user_message))
            return
        if isinstance(parsed, HelpCommand):
            text, blocks = help_message(environments)
            await ack(text=text, blocks=blocks)
            return
        build = environments.environments[parsed.environment].build
        await ack(
            text=build_starting_ack(
                parsed.environment, build.project, parsed.ref or build.source_version
            )
        )

    async def start(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        """After the ack: start the build, record it, announce it in the channel."""
        slash = SlashCommand.model_validate(command)
        environments = self._services.environments
        try:
            parsed = parse_build_command(slash.text, environments)
        except UsageError:
            return  # already answered by acknowledge()
        if not isinstance(parsed, StartBuildCommand):
            return
        environment = environments.environments[parsed.environment]
        request = build_request(
            parsed.environment,
            environment,
            ref=parsed.ref,
            requested_by=slash.user_id,
            request_key=slash.request_key(),
        )
        build = await self._services.codebuild.start_build(request)
        now = self._services.clock()
        try:
            record = await self._services.store.create(
                BuildRecord(
                    build_id=build.id,
                    build_arn=build.arn,
                    build_number=build.build_number,
                    project=build.project_name,
                    environment=parsed.environment,
                    source_version=request.source_version,
                    requested_by=slash.user_id,
                    channel=environment.channel,
                    status=build.build_status,
                    current_phase=build.current_phase,
                    started_at=build.start_time,
                    revision=1,
                    console_url=build_console_url(build.arn, self._services.region),
                    created_at=now,
                    updated_at=now,
                )
            )
        except StoreConflictError:
            # The same request delivered again: CodeBuild returned the build it already started.
            existing = await self._services.store.get(BuildRecord, build.id)
            if existing is not None:
                await respond(text=build_already_started(existing))
            return

        try:
            await self._tracker.announce(record)
        except SlackPostError as exc:
            await respond(text=channel_post_failed(record, exc.user_message))
            return
        await respond(text=build_started_ephemeral(record))


def register(app: AsyncApp, services: Services, tracker: BuildTracker) -> None:
    command = BuildCommand(services, tracker)
    app.command("/build")(ack=command.acknowledge, lazy=[reporting_errors(command.start)])
