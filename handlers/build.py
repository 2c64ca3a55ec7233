"""`/build`: start an arm64 CodeBuild build, list recent builds, stop one."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.builds import (
    CancelCommand,
    HelpCommand,
    StartBuildCommand,
    StatusCommand,
    build_console_url,
    build_request,
    matching_builds,
    parse_build_command,
)
from bot.errors import StoreConflictError, UsageError
from bot.messages import (
    build_already_finished,
    build_already_started,
    build_cancelled,
    build_list_message,
    build_started_ephemeral,
    build_starting_ack,
    cancel_ack,
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

STATUS_LIMIT_ONE = 10
STATUS_LIMIT_EACH = 5
CANCEL_SEARCH_DEPTH = 100


class BuildCommand:
    def __init__(self, services: Services, tracker: BuildTracker) -> None:
        self._services = services
        self._tracker = tracker

    async def acknowledge(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        """Answer within Slack's three seconds, before any AWS call."""
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
        elif isinstance(parsed, StatusCommand):
            text, blocks = build_list_message(await self._recent(parsed.environment))
            await ack(text=text, blocks=blocks)
        elif isinstance(parsed, CancelCommand):
            await ack(text=cancel_ack(parsed.target))
        else:
            build = environments.environments[parsed.environment].build
            await ack(
                text=build_starting_ack(
                    parsed.environment, build.project, parsed.ref or build.source_version
                )
            )

    async def after_ack(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        """The slow part, run by Bolt once Slack has its answer."""
        slash = SlashCommand.model_validate(command)
        try:
            parsed = parse_build_command(slash.text, self._services.environments)
        except UsageError:
            return  # already answered by acknowledge()
        if isinstance(parsed, StartBuildCommand):
            await self._start(slash, parsed, respond)
        elif isinstance(parsed, CancelCommand):
            await self._cancel(parsed, respond)

    async def _recent(self, environment: str | None) -> dict[str, list[BuildRecord]]:
        names = [environment] if environment else sorted(self._services.environments.environments)
        limit = STATUS_LIMIT_ONE if environment else STATUS_LIMIT_EACH
        store = self._services.store
        return {name: await store.recent(BuildRecord, name, limit) for name in names}

    async def _start(
        self, slash: SlashCommand, parsed: StartBuildCommand, respond: AsyncRespond
    ) -> None:
        environment = self._services.environments.environments[parsed.environment]
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
                    console_url=build_console_url(build.arn, self._services.region),
                    created_at=now,
                    updated_at=now,
                    started_at=build.start_time,
                    revision=1,
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

    async def _cancel(self, parsed: CancelCommand, respond: AsyncRespond) -> None:
        candidates: list[BuildRecord] = []
        for name in self._services.environments.environments:
            candidates.extend(
                await self._services.store.recent(BuildRecord, name, CANCEL_SEARCH_DEPTH)
            )
        found = matching_builds(candidates, parsed)
        if not found:
            raise UsageError(
                f"I know no recent build `{parsed.target}`. `/build status` lists them."
            )
        if len(found) > 1:
            listed = ", ".join(f"`{r.environment}`" for r in found)
            raise UsageError(
                f"Build #{parsed.target} exists in several environments ({listed}): "
                f"say which, e.g. `/build cancel {found[0].environment} {parsed.target}`."
            )
        [record] = found
        if record.status != "IN_PROGRESS":
            await respond(text=build_already_finished(record))
            return
        build = await self._services.codebuild.stop_build(record.build_id)
        await self._tracker.apply(build.to_update(self._services.clock()))
        stopped = build.build_status != "IN_PROGRESS"
        await respond(text=build_cancelled(record, stopped=stopped))


def register(app: AsyncApp, services: Services, tracker: BuildTracker) -> None:
    command = BuildCommand(services, tracker)
    app.command("/build")(ack=command.acknowledge, lazy=[reporting_errors(command.after_ack)])
