"""Deploys behind approval buttons, end to end.

ECR and EC2 are moto; SSM is the scripted stand-in (moto's says Success to everything); Slack
is the fake; clicks are signed `block_actions` payloads sent to the real endpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest

from bot.approvals import APPROVE_ACTION, REJECT_ACTION
from bot.records import DeployRequest
from bot.server import RunningBot, running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.fleet import launch_instances, push_image
from standins.moto_server import MotoServer
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack, SlackCall
from standins.slack_requests import SlackAppClient, block_actions_payload
from standins.ssm import FakeSsm
from tests.conftest import REGION, REQUESTER, SIGNING_SECRET, eventually

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slack"
COMMIT = "3f9c2ab7d1e04c55b8a9f0e1d2c3b4a596877f10"

DEPLOY_YAML = """
region: ap-northeast-2
environments:
  dev:
    channel: C0DEVCHANNEL
    build: {project: frontend-dev, source_version: dev}
    image: {repository: frontend}
    deploy:
      instances: {Environment: dev}
      container: frontend
      run_args: ["-p", "3000:3000"]
      approvers: [U0APPROVER1, U0ENGINEER1, S0DEPLOYERS]
  prod:
    channel: C0PRODCHANNEL
    build: {project: frontend-prod, source_version: main}
    image: {repository: frontend}
    deploy:
      instances: {Environment: prod}
      container: frontend
      approvers: [U0APPROVER1, U0APPROVER2, U0APPROVER3]
      required_approvals: 2
  qa:
    channel: C0QACHANNEL
    build: {project: frontend-qa}
    image: {repository: frontend}
    deploy:
      instances: {Environment: qa}
      container: frontend
      approvers: [U0APPROVER1]
      approval_timeout_minutes: 0.03
"""


class Fleet:
    def __init__(self, ssm: FakeSsm) -> None:
        ecr = boto3.client("ecr", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        self.v1 = push_image(
            ecr, "frontend", ["v1", COMMIT], platforms=["linux/amd64", "linux/arm64"]
        )
        self.v0 = push_image(ecr, "frontend", ["v0"], platforms=["linux/arm64"])
        self.x86 = push_image(ecr, "frontend", ["x86-only"], platforms=["linux/amd64"])
        self.dev = launch_instances(ec2, ["web-1", "web-2"], {"Environment": "dev"})
        self.prod = launch_instances(ec2, ["api-1"], {"Environment": "prod"})
        self.qa = launch_instances(ec2, ["qa-1"], {"Environment": "qa"})
        for env, ids in (("dev", self.dev), ("prod", self.prod), ("qa", self.qa)):
            for instance_id in ids:
                ssm.register_instance(instance_id, {"Environment": env})


@pytest.fixture
def environments_file(tmp_path: Path) -> Path:
    path = tmp_path / "shipbot.yml"
    path.write_text(DEPLOY_YAML, encoding="utf-8")
    return path


@pytest.fixture
async def fake_ssm(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSsm]:
    ssm = FakeSsm(region=REGION)
    await ssm.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", ssm.url)
    yield ssm
    await ssm.stop()


@pytest.fixture
def fleet(fake_ssm: FakeSsm) -> Fleet:
    return Fleet(fake_ssm)


@pytest.fixture
async def deploy_bot(
    bot_environ: dict[str, str], fake_codebuild: FakeCodeBuild, queue_url: str, fleet: Fleet
) -> AsyncIterator[RunningBot]:
    fake_codebuild.add_project("frontend-qa")
    environ = {
        **bot_environ,
        "SHIPBOT_EVENTS_QUEUE_URL": queue_url,
        "SHIPBOT_QUEUE_WAIT_SECONDS": "1",
        "SHIPBOT_POLL_SECONDS": "3600",
        "SHIPBOT_STATUS_UPDATE_SECONDS": "0.2",
        "SHIPBOT_DEPLOY_POLL_SECONDS": "0.2",
    }
    async with running_bot(load_services(environ)) as running:
        yield running


@pytest.fixture
async def app(deploy_bot: RunningBot) -> AsyncIterator[SlackAppClient]:
    async with aiohttp.ClientSession() as session:
        yield SlackAppClient(session, f"{deploy_bot.url}/slack/events", SIGNING_SECRET)


async def slash_deploy(
    app: SlackAppClient, slack: FakeSlack, text: str, *, user: str = REQUESTER
) -> tuple[int, dict[str, Any]]:
    return await app.command(
        text, user_id=user, response_url=slack.response_url(), command="/deploy"
    )


def is_deploy_request(call: SlackCall) -> bool:
    return ":rocket:" in call.all_text() and not call.params.get("thread_ts")


def buttons(call: SlackCall) -> list[dict[str, Any]]:
    return [e for b in call.blocks if b.get("type") == "actions" for e in b["elements"]]


async def click(
    app: SlackAppClient, slack: FakeSlack, request_post: SlackCall, user: str, action_id: str
) -> int:
    [button] = [b for b in buttons(request_post) if b["action_id"] == action_id]
    [block] = [b for b in request_post.blocks if b.get("type") == "actions"]
    payload = block_actions_payload(
        user_id=user,
        channel_id=request_post.params["channel"],
        message_ts=request_post.result["ts"],
        action_id=action_id,
        value=button["value"],
        block_id=block["block_id"],
        response_url=slack.response_url(),
        message_blocks=request_post.blocks,
    )
    status, _ = await app.action(payload)
    return status


async def build_succeeds(
    app: SlackAppClient,
    slack: FakeSlack,
    codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
    *,
    image_tag: str | None = "v1",
    count: int = 1,
) -> SlackCall:
    await app.command("dev", user_id=REQUESTER, response_url=slack.response_url())
    await slack.wait_for("response_url", lambda c: "Started build" in c.text, count=count)
    build_id = max(codebuild.builds, key=lambda b: codebuild.builds[b]["buildNumber"])
    pipeline.finish(
        build_id,
        "SUCCEEDED",
        exported={"IMAGE_TAG": image_tag} if image_tag else None,
        commit=COMMIT,
    )
    return await slack.wait_for("chat.postMessage", is_deploy_request, count=count)


async def deploy_request(bot: RunningBot, environment: str) -> DeployRequest:
    [latest, *_] = await bot.services.store.recent(DeployRequest, environment, 1)
    return latest


def test_block_actions_sample_matches_what_the_stand_in_sends() -> None:
    sample = json.loads((FIXTURES / "block_actions.json").read_text())
    sample.pop("_comment")
    sent = block_actions_payload(
        user_id="U1",
        channel_id="C1",
        message_ts="1.2",
        action_id=APPROVE_ACTION,
        value="r",
        block_id="b",
        response_url="http://x",
    )
    assert set(sent) == set(sample)
    assert set(sent["actions"][0]) == set(sample["actions"][0])
    assert set(sent["container"]) == set(sample["container"])


async def test_successful_build_gets_a_request_and_approval_deploys_the_exact_digest(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    fake_ssm: FakeSsm,
    pipeline: BuildPipeline,
    fleet: Fleet,
) -> None:
    request_post = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)

    shown = request_post.all_text()
    assert request_post.params["channel"] == "C0DEVCHANNEL"
    assert "`v1`" in shown
    assert fleet.v1.removeprefix("sha256:")[:12] in shown
    assert "build #1" in shown
    assert COMMIT[:12] in shown
    assert "2 instance(s)" in shown
    assert "web-1" in shown
    assert "web-2" in shown
    assert "arm64" in shown
    assert f"<@{REQUESTER}>" in shown
    assert "<!subteam^S0DEPLOYERS>" in shown
    assert "<!date^" in shown  # when it expires
    assert [b["action_id"] for b in buttons(request_post)] == [APPROVE_ACTION, REJECT_ACTION]

    # U0APPROVER2 is an approver through the S0DEPLOYERS user group.
    assert await click(app, fake_slack, request_post, "U0APPROVER2", APPROVE_ACTION) == 200

    [sent] = await eventually(lambda: _async(fake_ssm.requests_for("SendCommand")))
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Targets"] == [{"Key": "tag:Environment", "Values": ["dev"]}]
    script = "\n".join(sent["Parameters"]["commands"])
    image = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/frontend@{fleet.v1}"
    assert f"docker pull --quiet {image}" in script or f"docker pull {image}" in script
    assert "--name frontend --restart unless-stopped -p 3000:3000" in script

    results = await fake_slack.wait_for(
        "chat.update",
        lambda c: c.all_text().count(": Success") == 2,
        timeout=10,
    )
    assert "web-1" in results.all_text()
    outcome = await fake_slack.wait_for(
        "chat.update", lambda c: "deployed." in c.all_text() and ":rocket:" in c.all_text()
    )
    assert outcome.params["ts"] == request_post.result["ts"]
    assert buttons(outcome) == []
    assert "Approved by <@U0APPROVER2>" in outcome.all_text()
    ephemeral = await fake_slack.wait_for("chat.postEphemeral")
    assert ephemeral.params["user"] == "U0APPROVER2"
    request = await deploy_request(deploy_bot, "dev")
    assert request.status == "succeeded"


async def _async(value: Any) -> Any:
    return value


async def test_architecture_mismatch_is_blocked_without_an_approve_button(
    app: SlackAppClient, fake_slack: FakeSlack, fake_ssm: FakeSsm
) -> None:
    await slash_deploy(app, fake_slack, "dev x86-only", user=REQUESTER)

    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)
    shown = request_post.all_text()
    assert buttons(request_post) == []
    assert ":x:" in shown
    assert "amd64" in shown
    assert "arm64" in shown
    assert "Cannot be deployed" in shown
    reply = await fake_slack.wait_for("response_url", lambda c: "cannot be approved" in c.text)
    assert "amd64" in reply.text
    assert fake_ssm.requests_for("SendCommand") == []


async def test_non_approver_and_self_approval_are_refused(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    fake_ssm: FakeSsm,
    pipeline: BuildPipeline,
) -> None:
    request_post = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)

    await click(app, fake_slack, request_post, "U0STRANGER", APPROVE_ACTION)
    stranger = await fake_slack.wait_for("chat.postEphemeral")
    assert stranger.params["user"] == "U0STRANGER"
    assert "not allowed" in stranger.text

    await click(app, fake_slack, request_post, REQUESTER, APPROVE_ACTION)
    own = await fake_slack.wait_for("chat.postEphemeral", count=2)
    assert own.params["user"] == REQUESTER
    assert "someone else has to approve" in own.text

    await asyncio.sleep(0.5)
    assert fake_ssm.requests_for("SendCommand") == []
    assert (await deploy_request(deploy_bot, "dev")).status == "pending"


async def test_prod_needs_two_distinct_approvers(
    deploy_bot: RunningBot, app: SlackAppClient, fake_slack: FakeSlack, fake_ssm: FakeSsm
) -> None:
    await slash_deploy(app, fake_slack, "prod v1", user=REQUESTER)
    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)
    assert "2 approval(s)" in request_post.all_text()

    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)
    first = await fake_slack.wait_for("chat.postEphemeral")
    assert "1 more needed" in first.text
    updated = await fake_slack.wait_for("chat.update", lambda c: "<@U0APPROVER1>" in c.all_text())
    assert buttons(updated)  # still open
    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)
    again = await fake_slack.wait_for("chat.postEphemeral", count=2)
    assert "already approved" in again.text
    assert fake_ssm.requests_for("SendCommand") == []

    await click(app, fake_slack, request_post, "U0APPROVER3", APPROVE_ACTION)
    [sent] = await eventually(lambda: _async(fake_ssm.requests_for("SendCommand")))
    assert sent["Targets"] == [{"Key": "tag:Environment", "Values": ["prod"]}]
    request = await deploy_request(deploy_bot, "prod")
    assert [a.user for a in request.approvals] == ["U0APPROVER1", "U0APPROVER3"]


async def test_request_expires_and_then_refuses_clicks(
    deploy_bot: RunningBot, app: SlackAppClient, fake_slack: FakeSlack, fake_ssm: FakeSsm
) -> None:
    await slash_deploy(app, fake_slack, "qa v1", user=REQUESTER)
    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)

    expired = await fake_slack.wait_for(
        "chat.update", lambda c: "Expired" in c.all_text(), timeout=10
    )
    assert buttons(expired) == []
    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)
    refused = await fake_slack.wait_for("chat.postEphemeral")
    assert "expired" in refused.text
    assert fake_ssm.requests_for("SendCommand") == []


async def test_reject_ends_the_request(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    fake_ssm: FakeSsm,
    pipeline: BuildPipeline,
) -> None:
    request_post = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)

    await click(app, fake_slack, request_post, "U0APPROVER1", REJECT_ACTION)

    rejected = await fake_slack.wait_for("chat.update", lambda c: "Rejected by" in c.all_text())
    assert "<@U0APPROVER1>" in rejected.all_text()
    assert buttons(rejected) == []
    await click(app, fake_slack, request_post, "U0APPROVER2", APPROVE_ACTION)
    late = await fake_slack.wait_for("chat.postEphemeral", count=2)
    assert "already rejected" in late.text
    assert fake_ssm.requests_for("SendCommand") == []


async def test_twenty_concurrent_approvals_send_one_command(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    fake_ssm: FakeSsm,
    pipeline: BuildPipeline,
) -> None:
    request_post = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)
    clickers = ["U0APPROVER1", "U0APPROVER2", "U0APPROVER3"]

    statuses = await asyncio.gather(
        *(click(app, fake_slack, request_post, clickers[i % 3], APPROVE_ACTION) for i in range(20))
    )

    assert statuses == [200] * 20
    await fake_slack.wait_for("chat.postEphemeral", count=20, timeout=15)
    await asyncio.sleep(0.5)
    assert len(fake_ssm.requests_for("SendCommand")) == 1
    request = await deploy_request(deploy_bot, "dev")
    assert len(request.approvals) == 1
    assert request.status in ("deploying", "succeeded")


async def test_failed_instance_is_reported_with_its_classified_stderr(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    fake_ssm: FakeSsm,
    pipeline: BuildPipeline,
    fleet: Fleet,
) -> None:
    fake_ssm.script(
        fleet.dev[1],
        status="Failed",
        stderr=(
            "shipbot: frontend is not running (restarting 3); its last log lines:\n"
            "exec /usr/local/bin/docker-entrypoint.sh: exec format error\n"
        ),
        response_code=1,
        polls_before_done=2,
    )
    request_post = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)

    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)

    results = await fake_slack.wait_for(
        "chat.update",
        lambda c: ": Failed" in c.all_text() and ": Success" in c.all_text(),
        timeout=10,
    )
    shown = results.all_text()
    assert fleet.dev[1] in shown
    assert "(`exec_format`)" in shown
    assert "exec format error" in shown
    outcome = await fake_slack.wait_for(
        "chat.update", lambda c: "deployment failed" in c.all_text()
    )
    assert outcome.params["ts"] == request_post.result["ts"]
    assert (await deploy_request(deploy_bot, "dev")).status == "failed"


async def test_deploy_command_rolls_back_to_an_older_image_and_history_shows_it(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_ssm: FakeSsm,
    fleet: Fleet,
) -> None:
    status, ack = await slash_deploy(app, fake_slack, "dev v0", user="U0APPROVER3")
    assert status == 200
    assert "Looking up `v0`" in ack["text"]
    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)
    assert "redeploy / rollback" in request_post.all_text()

    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)
    [sent] = await eventually(lambda: _async(fake_ssm.requests_for("SendCommand")))
    assert fleet.v0 in "\n".join(sent["Parameters"]["commands"])
    await eventually(lambda: _status(deploy_bot, "succeeded"), timeout=10)

    _, history = await slash_deploy(app, fake_slack, "history dev", user=REQUESTER)
    shown = json.dumps(history)
    assert "`v0`" in shown
    assert fleet.v0.removeprefix("sha256:")[:12] in shown
    assert "succeeded" in shown
    assert "requested by <@U0APPROVER3>" in shown
    assert "approved by <@U0APPROVER1>" in shown


async def _status(bot: RunningBot, status: str) -> bool:
    return (await deploy_request(bot, "dev")).status == status


async def test_deploy_of_an_unknown_tag_lists_recent_ones(
    app: SlackAppClient, fake_slack: FakeSlack, fake_ssm: FakeSsm
) -> None:
    await slash_deploy(app, fake_slack, "dev v9", user=REQUESTER)

    reply = await fake_slack.wait_for("response_url", lambda c: "`v9`" in c.text)
    assert "not in ECR repository `frontend`" in reply.text
    assert "`v1`" in reply.text
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_newer_build_supersedes_the_pending_request(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    first = await build_succeeds(app, fake_slack, fake_codebuild, pipeline)
    await build_succeeds(app, fake_slack, fake_codebuild, pipeline, count=2)

    superseded = await fake_slack.wait_for(
        "chat.update",
        lambda c: "Superseded" in c.all_text() and c.params["ts"] == first.result["ts"],
    )
    assert buttons(superseded) == []


async def test_a_build_without_an_image_says_so_and_offers_nothing(
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
    fake_ssm: FakeSsm,
) -> None:
    await app.command("dev", user_id=REQUESTER, response_url=fake_slack.response_url())
    await fake_slack.wait_for("response_url", lambda c: "Started build" in c.text)
    [build_id] = fake_codebuild.builds
    pipeline.finish(build_id, "SUCCEEDED", commit="0" * 40)

    note = await fake_slack.wait_for(
        "chat.postMessage", lambda c: "No image of this build" in c.text
    )
    assert note.params.get("thread_ts")
    assert "`0000000`" in note.text
    assert not [c for c in fake_slack.calls_to("chat.postMessage") if is_deploy_request(c)]


async def test_an_instance_ssm_cannot_reach_is_shown_in_the_request_and_its_result(
    deploy_bot: RunningBot,
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_ssm: FakeSsm,
    fleet: Fleet,
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    [lost] = launch_instances(ec2, ["web-3"], {"Environment": "dev"})
    fake_ssm.register_instance(lost, {"Environment": "dev"}, ping_status="ConnectionLost")

    await slash_deploy(app, fake_slack, "dev v1", user=REQUESTER)
    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)
    assert f"`{lost}`, arm64, SSM ConnectionLost" in request_post.all_text()
    assert buttons(request_post)  # the reachable instances can still be deployed to

    await click(app, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION)
    results = await fake_slack.wait_for(
        "chat.update",
        lambda c: (
            lost in c.all_text() and "TimedOut" in c.all_text() and ": Success" in c.all_text()
        ),
        timeout=10,
    )
    assert results.all_text().count(": Success") == 2
    await eventually(lambda: _status(deploy_bot, "failed"))


async def test_two_replicas_sharing_a_store_start_one_deployment(
    deploy_bot: RunningBot,
    bot_environ: dict[str, str],
    app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_ssm: FakeSsm,
) -> None:
    environ = {**bot_environ, "SHIPBOT_POLL_SECONDS": "3600", "SHIPBOT_DEPLOY_POLL_SECONDS": "0.2"}
    async with running_bot(load_services(environ)) as replica, aiohttp.ClientSession() as session:
        other = SlackAppClient(session, f"{replica.url}/slack/events", SIGNING_SECRET)
        await slash_deploy(app, fake_slack, "dev v1", user=REQUESTER)
        request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)

        statuses = await asyncio.gather(
            *(
                click(
                    app if i % 2 else other, fake_slack, request_post, "U0APPROVER1", APPROVE_ACTION
                )
                for i in range(10)
            )
        )

        assert statuses == [200] * 10
        await fake_slack.wait_for("chat.postEphemeral", count=10, timeout=15)
        await asyncio.sleep(0.5)
        assert len(fake_ssm.requests_for("SendCommand")) == 1


async def test_unknown_image_architecture_is_said_and_still_approvable(
    app: SlackAppClient, fake_slack: FakeSlack, fake_ssm: FakeSsm
) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    push_image(ecr, "frontend", ["single"], platforms=["linux/arm64"], index=False)

    await slash_deploy(app, fake_slack, "dev single")

    request_post = await fake_slack.wait_for("chat.postMessage", is_deploy_request)
    shown = request_post.all_text()
    assert ":grey_question:" in shown
    assert "unknown" in shown.lower()
    assert [b["action_id"] for b in buttons(request_post)] == [APPROVE_ACTION, REJECT_ACTION]
