"""Deploy requests: proposing one after a build, deciding clicks, running and watching SSM.

Every state change is a conditional write on the request (see `integrations.store.mutate`),
so double clicks, simultaneous approvers, Slack retries and several replicas start exactly one
deployment: only the write that moves a request from pending to approved sends the command.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import timedelta
from typing import Literal

from bot.approvals import APPROVE_ACTION, ClickOutcome, approve, expire_if_due, reject, supersede
from bot.config import DeploySettings
from bot.deploy_script import DeployTarget, deploy_commands
from bot.errors import AwsError, ShipbotError, StoreConflictError
from bot.failures import classify
from bot.images import check_architecture
from bot.messages import (
    deploy_request_message,
    deploy_results_message,
    deploy_unavailable_message,
    no_image_message,
)
from bot.records import BuildRecord, DeployRequest, InstanceResult, TargetInstance
from bot.redaction import redact
from bot.services import Services
from integrations.ecr import ImageInfo
from integrations.slack import SlackPostError
from integrations.ssm import Invocation
from integrations.store import mutate

log = logging.getLogger(__name__)

FINAL_INVOCATION_STATUSES = frozenset(
    {
        "Success",
        "Failed",
        "TimedOut",
        "Cancelled",
        "Undeliverable",
        "Terminated",
        "DeliveryTimedOut",
        "ExecutionTimedOut",
        "InvalidPlatform",
        "AccessDenied",
    }
)
# A command that reached no instance within this long is reported failed.
NO_INVOCATION_GRACE = timedelta(minutes=2)
# An approved request whose command was never sent (the bot stopped in between) is failed,
# never sent late: a deploy nobody is watching must not start by surprise.
UNSENT_GRACE = timedelta(minutes=2)
STDERR_TAIL_LINES = 12


def build_request_id(build_id: str) -> str:
    """One request per build, whoever notices the build first."""
    return "b" + hashlib.sha256(build_id.encode()).hexdigest()[:20]


def image_tags_for_build(exported: dict[str, str], commit: str | None) -> list[str]:
    """Where a build's image is tagged: its exported IMAGE_TAG, else its commit (full, short)."""
    tags = []
    if exported.get("IMAGE_TAG"):
        tags.append(exported["IMAGE_TAG"])
    if commit:
        tags.extend([commit, commit[:7]])
    return list(dict.fromkeys(tags))


class Deployments:
    def __init__(self, services: Services) -> None:
        self._services = services

    def _settings(self, environment: str) -> DeploySettings | None:
        return self._services.environments.environments[environment].deploy

    # -- proposing ---------------------------------------------------------------------------

    async def on_build_succeeded(self, record: BuildRecord) -> None:
        """After a successful build: post a deploy request for its image (once per build)."""
        if self._settings(record.environment) is None:
            return

        def claim(current: BuildRecord) -> BuildRecord | None:
            if current.deploy_claimed:
                return None
            return current.model_copy(update={"deploy_claimed": True})

        if await mutate(self._services.store, BuildRecord, record.build_id, claim) is None:
            return
        try:
            await self._propose_for_build(record)
        except ShipbotError as exc:
            # Said under the build, once: retrying the event would not change ECR or EC2.
            log.warning("no deploy request for %s: %s", record.build_id, exc.user_message)
            text, blocks = deploy_unavailable_message(exc.user_message)
            await self._services.chat.post(
                record.channel, text, blocks, thread_ts=record.message_ts
            )

    async def _propose_for_build(self, record: BuildRecord) -> None:
        builds = await self._services.codebuild.get_builds([record.build_id])
        exported = builds[0].exported if builds else {}
        commit = builds[0].resolved_source_version if builds else None
        tags = image_tags_for_build(exported, commit)
        repository = self._services.environments.environments[record.environment].image.repository
        image = await self._services.ecr.find_image(repository, tags) if tags else None
        if image is None:
            text, blocks = no_image_message(record, repository, tags)
            await self._services.chat.post(
                record.channel, text, blocks, thread_ts=record.message_ts
            )
            return
        await self.propose(
            record.environment,
            image,
            origin="build",
            requested_by=record.requested_by,
            request_id=build_request_id(record.build_id),
            build=record,
            commit=commit,
        )

    async def propose(
        self,
        environment: str,
        image: ImageInfo,
        *,
        origin: Literal["build", "redeploy"],
        requested_by: str | None,
        request_id: str | None = None,
        build: BuildRecord | None = None,
        commit: str | None = None,
    ) -> DeployRequest:
        """Check the targets and the image, post the request, retire older pending ones."""
        services = self._services
        settings = self._settings(environment)
        if settings is None:
            raise ShipbotError(f"`{environment}` has no `deploy` section in the environments file.")
        now = services.clock()
        instances = await self._target_instances(settings)
        running = {i.instance_id: i.architecture for i in instances if i.state == "running"}
        check = check_architecture(running, image.platforms)
        blockers = _blockers(settings, instances, check.verdict, check.detail)
        request = DeployRequest(
            request_id=request_id or "d" + uuid.uuid4().hex[:20],
            environment=environment,
            origin=origin,
            repository=image.repository,
            registry_uri=image.registry_uri,
            tag=image.tag,
            digest=image.digest,
            commit=commit,
            build_id=build.build_id if build else None,
            build_number=build.build_number if build else None,
            requested_by=requested_by,
            instances=instances,
            architecture_verdict=check.verdict,
            architecture_detail=check.detail,
            blockers=blockers,
            required_approvals=settings.required_approvals,
            approvers=list(settings.approvers),
            allow_self_approval=settings.allow_self_approval,
            status="blocked" if blockers else "pending",
            expires_at=now + timedelta(minutes=settings.approval_timeout_minutes),
            channel=services.environments.environments[environment].channel,
            created_at=now,
        )
        created = await services.store.create(request)
        await self._supersede_older(created)
        text, blocks = deploy_request_message(created)
        posted = await services.chat.post(created.channel, text, blocks)
        await mutate(
            services.store,
            DeployRequest,
            created.request_id,
            lambda current: current.model_copy(update={"message_ts": posted.ts}),
        )
        return created.model_copy(update={"message_ts": posted.ts})

    async def _target_instances(self, settings: DeploySettings) -> list[TargetInstance]:
        found = await self._services.ec2.find_instances(settings.instances)
        ids = [i.instance_id for i in found]
        try:
            pings = await self._services.ssm.ping_status(ids) if ids else {}
        except AwsError as exc:
            log.warning("cannot read SSM reachability: %s", exc.user_message)
            pings = {i: "Unknown" for i in ids}
        return [
            TargetInstance(
                instance_id=i.instance_id,
                name=i.name,
                architecture=i.architecture,
                state=i.state,
                ssm_ping=pings.get(i.instance_id, "NotManaged"),
            )
            for i in found
        ]

    async def _supersede_older(self, newer: DeployRequest) -> None:
        now = self._services.clock()
        for older in await self._services.store.recent(DeployRequest, newer.environment, 20):
            if older.request_id == newer.request_id or older.status != "pending":
                continue
            changed = await mutate(
                self._services.store,
                DeployRequest,
                older.request_id,
                lambda current: supersede(current, newer.request_id, now),
            )
            if changed is not None:
                await self._show(changed[1])

    # -- clicks ------------------------------------------------------------------------------

    async def on_click(self, action_id: str, request_id: str, user: str) -> ClickOutcome:
        """Apply an Approve or Reject click; start the deployment if it completed approval."""
        services = self._services
        current = await services.store.get(DeployRequest, request_id)
        if current is None:
            return ClickOutcome(result="refused", message="I know no such deploy request.")
        approvers = await services.directory.expand(current.approvers)
        decide = approve if action_id == APPROVE_ACTION else reject
        outcomes: list[ClickOutcome] = []

        def change(latest: DeployRequest) -> DeployRequest | None:
            outcome = decide(latest, user, approvers, services.clock())
            outcomes.append(outcome)
            return outcome.request

        changed = await mutate(services.store, DeployRequest, request_id, change)
        outcome = outcomes[-1]
        if changed is None:
            return outcome
        before, after = changed
        if before.status == "pending" and after.status == "approved":
            await self.start(after)  # sends first, then shows: Slack's pace never delays it
        else:
            await self._show(after)
        return outcome

    # -- running -----------------------------------------------------------------------------

    async def start(self, request: DeployRequest) -> None:
        """Send the deploy script through SSM: called only by the write that approved it."""
        services = self._services
        settings = self._settings(request.environment)
        assert settings is not None  # a request exists only for environments with deploy
        registry, _, repository = request.registry_uri.partition("/")
        try:
            commands = deploy_commands(
                DeployTarget(
                    registry=registry,
                    repository=repository,
                    digest=request.digest,
                    region=services.region,
                    container=settings.container,
                    run_args=list(settings.run_args),
                )
            )
            command_id = await services.ssm.send_command(
                tags=settings.instances,
                commands=commands,
                comment=f"shipbot {request.environment} {request.short_digest}",
            )
        except ShipbotError as exc:
            await self._finish(request.request_id, failure=exc.user_message)
            return
        now = services.clock()
        results = [
            InstanceResult(instance_id=i.instance_id, name=i.name, status="Pending")
            for i in request.instances
            if i.state == "running"
        ]
        changed = await mutate(
            services.store,
            DeployRequest,
            request.request_id,
            lambda current: current.model_copy(
                update={
                    "status": "deploying",
                    "command_id": command_id,
                    "command_sent_at": now,
                    "results": results,
                }
            ),
        )
        if changed is not None:
            await self._show(changed[1])
            await self._show_results(changed[1])

    async def _finish(self, request_id: str, *, failure: str | None) -> None:
        now = self._services.clock()

        def finish(current: DeployRequest) -> DeployRequest | None:
            if current.status not in ("approved", "deploying"):
                return None
            ok = failure is None and all(r.status == "Success" for r in current.results)
            return current.model_copy(
                update={
                    "status": "succeeded" if ok else "failed",
                    "failure": failure,
                    "finished_at": now,
                }
            )

        changed = await mutate(self._services.store, DeployRequest, request_id, finish)
        if changed is not None:
            await self._show(changed[1])
            await self._show_results(changed[1])

    # -- watching ----------------------------------------------------------------------------

    async def watch_once(self) -> None:
        """Expire due requests and bring running deployments' progress to the thread."""
        services = self._services
        now = services.clock()
        for name, environment in services.environments.environments.items():
            if environment.deploy is None:
                continue
            for request in await services.store.recent(DeployRequest, name, 20):
                if request.status == "pending":
                    changed = await mutate(
                        services.store,
                        DeployRequest,
                        request.request_id,
                        lambda current: expire_if_due(current, now),
                    )
                    if changed is not None:
                        await self._show(changed[1])
                elif request.status == "deploying":
                    await self._refresh(request)
                elif (
                    request.status == "approved"
                    and request.decided_at is not None
                    and now - request.decided_at > UNSENT_GRACE
                ):
                    await self._finish(
                        request.request_id,
                        failure="the bot stopped before sending the command; request again",
                    )

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.watch_once()
            except (ShipbotError, StoreConflictError) as exc:
                log.warning("deploy watch failed: %s", exc)
            await asyncio.sleep(interval)

    async def _refresh(self, request: DeployRequest) -> None:
        if request.command_id is None or request.results_ts is None:
            return  # whoever sent the command is still posting its first progress message
        services = self._services
        invocations = await services.ssm.invocations(request.command_id)
        known = {r.instance_id: r for r in request.results}
        results: list[InstanceResult] = []
        for invocation in invocations:
            previous = known.pop(invocation.instance_id, None)
            if previous is not None and previous.status == invocation.status:
                results.append(previous)
                continue
            results.append(await self._result(request.command_id, invocation, previous))
        all_reported = bool(invocations) and all(
            i.status in FINAL_INVOCATION_STATUSES for i in invocations
        )
        # Planned instances SSM has not reported on: still waiting, or (once everything SSM
        # targeted has finished) never targeted, e.g. retagged or stopped since the request.
        for missing in known.values():
            results.append(
                missing.model_copy(
                    update={"status": "Undeliverable", "detail": "SSM did not target it"}
                )
                if all_reported
                else missing
            )
        now = services.clock()
        no_show = (
            not invocations
            and request.command_sent_at is not None
            and now - request.command_sent_at > NO_INVOCATION_GRACE
        )
        if results != request.results:
            changed = await mutate(
                services.store,
                DeployRequest,
                request.request_id,
                lambda current: (
                    current.model_copy(update={"results": results})
                    if current.status == "deploying"
                    else None
                ),
            )
            if changed is not None:
                await self._show_results(changed[1])
        if no_show:
            await self._finish(request.request_id, failure="no instance received the command")
        elif all_reported:
            await self._finish(request.request_id, failure=None)

    async def _result(
        self, command_id: str, invocation: Invocation, previous: InstanceResult | None
    ) -> InstanceResult:
        name = invocation.instance_name or (previous.name if previous else None)
        if invocation.status in ("Success", "Pending", "InProgress", "Delayed"):
            return InstanceResult(
                instance_id=invocation.instance_id, name=name, status=invocation.status
            )
        detail = await self._services.ssm.invocation(command_id, invocation.instance_id)
        lines = [line for line in detail.stderr.splitlines() if line.strip()]
        finding = classify(lines or detail.stdout.splitlines()[-40:])
        tail = [redact(line) for line in lines[-STDERR_TAIL_LINES:]]
        known_cause = str(finding.category) != "unknown"
        return InstanceResult(
            instance_id=invocation.instance_id,
            name=name,
            status=invocation.status,
            detail=invocation.status_details
            if invocation.status_details != invocation.status
            else None,
            stderr_tail=tail,
            cause=str(finding.category) if known_cause else None,
            cause_title=finding.title if known_cause else None,
        )

    # -- Slack -------------------------------------------------------------------------------

    async def _show(self, request: DeployRequest) -> None:
        if request.message_ts is None:
            return
        text, blocks = deploy_request_message(request)
        try:
            await self._services.chat.update(request.channel, request.message_ts, text, blocks)
        except SlackPostError as exc:
            log.warning("could not update deploy request %s: %s", request.request_id, exc)

    async def _show_results(self, request: DeployRequest) -> None:
        text, blocks = deploy_results_message(request)
        if request.results_ts is not None:
            await self._services.chat.update(request.channel, request.results_ts, text, blocks)
            return
        posted = await self._services.chat.post(
            request.channel, text, blocks, thread_ts=request.message_ts
        )

        def remember(current: DeployRequest) -> DeployRequest | None:
            if current.results_ts is not None:
                return None
            return current.model_copy(update={"results_ts": posted.ts})

        await mutate(self._services.store, DeployRequest, request.request_id, remember)


def _blockers(
    settings: DeploySettings, instances: list[TargetInstance], verdict: str, detail: str
) -> list[str]:
    tags = ", ".join(f"{k}={v}" for k, v in settings.instances.items())
    running = [i for i in instances if i.state == "running"]
    if not running:
        return [f"no running EC2 instances have the tags {tags}"]
    if verdict == "mismatch":
        return [detail]
    reachable = [i for i in running if i.ssm_ping == "Online"]
    if not reachable:
        return ["SSM cannot reach any of the target instances (is the SSM agent running?)"]
    return []
