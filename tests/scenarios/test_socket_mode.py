"""Socket Mode: with SLACK_APP_TOKEN set the bot connects out over a websocket (fake, loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.server import RunningBot, running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.slack_api import FakeSlack
from standins.slack_requests import slash_command_fields
from tests.conftest import REQUESTER


@pytest.fixture
async def socket_bot(
    bot_environ: dict[str, str], fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> AsyncIterator[RunningBot]:
    environ = {**bot_environ, "SLACK_APP_TOKEN": fake_slack.app_token}
    async with running_bot(load_services(environ)) as running:
        yield running


async def test_socket_mode_connects_with_the_app_token(
    socket_bot: RunningBot, fake_slack: FakeSlack
) -> None:
    await fake_slack.wait_for_socket()

    [opened] = fake_slack.calls_to("apps.connections.open")
    assert opened.token == fake_slack.app_token
    assert socket_bot.socket_mode is not None


async def test_build_over_socket_mode_is_acked_on_the_socket_and_starts_the_build(
    socket_bot: RunningBot, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    payload = slash_command_fields(
        "/build", "dev feature/login", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    ack = await fake_slack.send_envelope("slash_commands", payload)

    assert "Starting a build of `frontend-dev`" in ack["payload"]["text"]
    post = await fake_slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "C0DEVCHANNEL"
    [request] = fake_codebuild.requests_for("StartBuild")
    assert request["sourceVersion"] == "feature/login"
    assert request["environmentTypeOverride"] == "ARM_CONTAINER"
