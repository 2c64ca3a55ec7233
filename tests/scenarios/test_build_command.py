"""`/build` end to end: signed requests to the real endpoint, CodeBuild stand-in, fake Slack."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bot.records import BuildRecord
from bot.server import RunningBot
from standins.codebuild import FakeCodeBuild
from standins.slack_api import FakeSlack
from standins.slack_requests import SlackAppClient, form_body, sign, slash_command_fields
from tests.conftest import REQUESTER

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slack"


def env_vars(request: dict[str, object]) -> dict[str, str]:
    overrides = request["environmentVariablesOverride"]
    assert isinstance(overrides, list)
    return {item["name"]: item["value"] for item in overrides}


async def test_slash_command_sample_matches_what_the_stand_in_sends() -> None:
    sample = json.loads((FIXTURES / "slash_command.json").read_text())
    sample.pop("_comment")
    sent = slash_command_fields("/build", "dev", user_id=REQUESTER, response_url="http://x")
    assert set(sent) == set(sample)


async def test_build_default_ref_starts_arm64_build_and_announces_it(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild, bot: RunningBot
) -> None:
    hook = fake_slack.response_url()
    status, ack = await slack_app.command("dev", user_id=REQUESTER, response_url=hook)

    assert status == 200
    assert "Starting a build of `frontend-dev`" in ack["text"]
    channel_post = await fake_slack.wait_for("chat.postMessage")
    [request] = fake_codebuild.requests_for("StartBuild")
    assert request["projectName"] == "frontend-dev"
    assert request["sourceVersion"] == "dev"
    assert request["environmentTypeOverride"] == "ARM_CONTAINER"
    assert request["imageOverride"] == "aws/codebuild/amazonlinux-aarch64-standard:3.0"
    assert "computeTypeOverride" not in request
    assert request["idempotencyToken"].startswith("shipbot-")
    assert env_vars(request) == {"SHIPBOT_REQUESTED_BY": REQUESTER, "SHIPBOT_ENVIRONMENT": "dev"}

    assert channel_post.params["channel"] == "C0DEVCHANNEL"
    shown = channel_post.all_text()
    assert f"<@{REQUESTER}>" in shown
    assert "Build #1 of *frontend-dev* (`dev`) at `dev`: *in progress*" in shown
    [build_id] = fake_codebuild.builds
    assert "console.aws.amazon.com/codesuite/codebuild/" in shown
    assert build_id.split(":")[1] in shown

    confirmation = await fake_slack.wait_for("response_url", lambda c: "Started build" in c.text)
    assert confirmation.params["hook"] == hook.rsplit("/", 1)[1]
    assert confirmation.params.get("response_type", "ephemeral") == "ephemeral"
    assert "<#C0DEVCHANNEL>" in confirmation.text

    record = await bot.services.store.get(BuildRecord, build_id)
    assert record is not None
    assert (record.environment, record.requested_by, record.channel) == (
        "dev",
        REQUESTER,
        "C0DEVCHANNEL",
    )
    assert record.message_ts == channel_post_ts(fake_slack)


def channel_post_ts(fake_slack: FakeSlack) -> str:
    [(_, ts)] = list(fake_slack.messages)
    return ts


async def test_build_with_ref_uses_it_and_the_environments_overrides(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    await slack_app.command(
        "prod feature/login", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    post = await fake_slack.wait_for("chat.postMessage")
    [request] = fake_codebuild.requests_for("StartBuild")
    assert request["projectName"] == "frontend-prod"
    assert request["sourceVersion"] == "feature/login"
    assert request["computeTypeOverride"] == "BUILD_GENERAL1_LARGE"
    assert request["environmentTypeOverride"] == "ARM_CONTAINER"
    assert env_vars(request)["SHIPBOT_ENVIRONMENT"] == "prod"
    assert post.params["channel"] == "C0PRODCHANNEL"
    assert "at `feature/login`" in post.all_text()


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
async def test_help_lists_usage_and_environments(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild, text: str
) -> None:
    status, ack = await slack_app.command(
        text, user_id=REQUESTER, response_url="http://127.0.0.1:9/"
    )

    assert status == 200
    shown = json.dumps(ack)
    assert "/build <environment> <ref>" in shown
    assert "`dev`" in shown
    assert "`prod`" in shown
    assert "frontend-dev" in shown
    assert ack.get("response_type", "ephemeral") == "ephemeral"
    assert fake_codebuild.requests_for("StartBuild") == []


async def test_unknown_environment_lists_the_known_ones(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    status, ack = await slack_app.command("staging", user_id=REQUESTER, response_url="http://x/")

    assert status == 200
    assert "no environment called `staging`" in ack["text"]
    assert "`dev`, `prod`" in ack["text"]
    assert fake_codebuild.requests_for("StartBuild") == []
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("feat;rm", "shell syntax"),
        ("$(reboot)", "shell syntax"),
        ("`id`", "shell syntax"),
        ("main..evil", "`..`"),
        ("a" * 201, "longer than 200"),
        ("feature\tx", "Too many arguments"),
        ("feat x", "Too many arguments"),
        ("-uflag", "cannot start with `-`"),
    ],
)
async def test_bad_ref_is_refused_and_starts_nothing(
    slack_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    ref: str,
    reason: str,
) -> None:
    status, ack = await slack_app.command(f"dev {ref}", user_id=REQUESTER, response_url="http://x/")

    assert status == 200
    assert reason in ack["text"]
    await asyncio.sleep(0.2)  # give a wrongly started build the chance to show up
    assert fake_codebuild.requests_for("StartBuild") == []
    assert fake_slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    "tamper",
    ["wrong-signature", "stale-timestamp", "empty-headers", "missing-headers", "other-secret"],
)
async def test_unsigned_or_stale_requests_get_401_and_do_nothing(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild, tamper: str
) -> None:
    body = form_body(
        slash_command_fields("/build", "dev", user_id=REQUESTER, response_url="http://x/")
    )
    if tamper == "wrong-signature":
        status, _ = await slack_app.post(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})
    elif tamper == "stale-timestamp":
        status, _ = await slack_app.post(body, timestamp=int(time.time()) - 301)
    elif tamper == "empty-headers":
        status, _ = await slack_app.post(
            body, headers={"X-Slack-Signature": "", "X-Slack-Request-Timestamp": ""}
        )
    elif tamper == "missing-headers":
        status, _ = await slack_app.post(
            body, headers={"X-Slack-Signature": None, "X-Slack-Request-Timestamp": None}
        )
    else:
        ts = int(time.time())
        status, _ = await slack_app.post(
            body, headers={"X-Slack-Signature": sign("not-our-secret", body, ts)}, timestamp=ts
        )

    assert status == 401
    await asyncio.sleep(0.2)
    assert fake_codebuild.requests_for("StartBuild") == []
    assert [c.method for c in fake_slack.calls if c.method != "auth.test"] == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "not allowed to start a CodeBuild build"),
        ("ResourceNotFoundException", "does not exist"),
    ],
)
async def test_aws_errors_are_explained_in_one_ephemeral_sentence(
    slack_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    code: str,
    expected: str,
) -> None:
    fake_codebuild.fail_next(
        "StartBuild", code, "User: arn:aws:sts::123456789012:x is not authorized"
    )

    status, _ = await slack_app.command(
        "dev", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    assert status == 200
    reply = await fake_slack.wait_for("response_url")
    assert expected in reply.text
    assert reply.params.get("response_type") == "ephemeral"
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_codebuild.builds == {}


async def test_project_missing_in_aws_is_explained(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    del fake_codebuild.projects["frontend-dev"]

    await slack_app.command("dev", user_id=REQUESTER, response_url=fake_slack.response_url())

    reply = await fake_slack.wait_for("response_url")
    assert "does not exist" in reply.text
    assert "frontend-dev" in reply.text


async def test_ack_arrives_before_a_slow_codebuild_answers(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    fake_codebuild.delay_next("StartBuild", 4.0)

    started = time.monotonic()
    status, ack = await slack_app.command(
        "dev", user_id=REQUESTER, response_url=fake_slack.response_url()
    )
    acked_after = time.monotonic() - started

    assert status == 200
    assert "Starting a build" in ack["text"]
    assert acked_after < 3.0, f"ack took {acked_after:.2f}s; Slack gives up after 3s"
    assert fake_slack.calls_to("chat.postMessage") == []  # CodeBuild has not answered yet
    post = await fake_slack.wait_for("chat.postMessage", timeout=10)
    assert post.params["channel"] == "C0DEVCHANNEL"


async def test_the_same_slash_command_delivered_twice_starts_one_build(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    body = form_body(
        slash_command_fields(
            "/build", "dev", user_id=REQUESTER, response_url=fake_slack.response_url()
        )
    )

    await slack_app.post(body)
    await fake_slack.wait_for("chat.postMessage")
    await slack_app.post(body)
    await fake_slack.wait_for("response_url", count=2)

    tokens = {r["idempotencyToken"] for r in fake_codebuild.requests_for("StartBuild")}
    assert len(tokens) == 1
    assert len(fake_codebuild.builds) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert "already started" in fake_slack.calls_to("response_url")[-1].text


async def test_channel_the_bot_is_not_in_is_explained_to_the_requester(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    fake_slack.fail_next("chat.postMessage", "not_in_channel")

    await slack_app.command("dev", user_id=REQUESTER, response_url=fake_slack.response_url())

    reply = await fake_slack.wait_for("response_url")
    assert "started" in reply.text
    assert "/invite" in reply.text
    assert len(fake_codebuild.builds) == 1


async def test_slack_rate_limit_is_waited_out_and_the_message_posted_once(
    slack_app: SlackAppClient, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    fake_slack.rate_limit_next("chat.postMessage", retry_after=1)

    await slack_app.command("dev", user_id=REQUESTER, response_url=fake_slack.response_url())

    await fake_slack.wait_for("response_url", lambda c: "Started build" in c.text, timeout=10)
    attempts = fake_slack.calls_to("chat.postMessage")
    assert len(attempts) == 2
    assert attempts[1].at - attempts[0].at >= 1.0
    assert len(fake_slack.messages) == 1
