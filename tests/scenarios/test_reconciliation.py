"""Without events (no queue, or EventBridge dropped them) polling still tells the channel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.server import RunningBot, running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack
from standins.slack_requests import SlackAppClient
from tests.conftest import REQUESTER, SIGNING_SECRET


@pytest.fixture
async def polling_bot(
    bot_environ: dict[str, str], fake_codebuild: FakeCodeBuild
) -> AsyncIterator[RunningBot]:
    environ = {**bot_environ, "SHIPBOT_POLL_SECONDS": "0.2", "SHIPBOT_STATUS_UPDATE_SECONDS": "0"}
    async with running_bot(load_services(environ)) as running:
        yield running


@pytest.fixture
async def polling_app(polling_bot: RunningBot) -> AsyncIterator[SlackAppClient]:
    async with aiohttp.ClientSession() as session:
        yield SlackAppClient(session, f"{polling_bot.url}/slack/events", SIGNING_SECRET)


async def test_without_a_queue_polling_shows_phases_and_explains_the_failure(
    polling_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    await polling_app.command("dev", user_id=REQUESTER, response_url=fake_slack.response_url())
    post = await fake_slack.wait_for("chat.postMessage")
    [build_id] = fake_codebuild.builds

    pipeline.enter_phase(build_id, "BUILD", deliver=False)
    await fake_slack.wait_for("chat.update", lambda c: "*build* :hourglass" in c.all_text())
    pipeline.write_log(
        build_id,
        [
            "[Container] 2026/12/01 10:13:12.000001 Running command docker run --rm app",
            "exec /usr/local/bin/docker-entrypoint.sh: exec format error",
            "[Container] 2026/12/01 10:13:13.000001 Command did not exit successfully "
            "docker run --rm app exit status 1",
        ],
    )
    pipeline.finish(
        build_id,
        "FAILED",
        failed_phase="BUILD",
        context=(
            "COMMAND_EXECUTION_ERROR",
            "Error while executing command: docker run. Reason: exit status 1",
        ),
        deliver=False,
    )

    reply = await fake_slack.wait_for("chat.postMessage", lambda c: bool(c.params.get("thread_ts")))
    assert reply.params["thread_ts"] == post.result["ts"]
    assert "(`exec_format`)" in reply.all_text()
    assert "linux/arm64" in reply.all_text()
    await fake_slack.wait_for("chat.update", lambda c: "failed" in c.text)


async def test_a_webhook_build_is_noticed_by_polling(
    polling_bot: RunningBot, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    build = fake_codebuild.start_external_build("frontend-prod", initiator="GitHub-Hookshot/ab12")

    post = await fake_slack.wait_for("chat.postMessage")

    assert post.params["channel"] == "C0PRODCHANNEL"
    assert "started outside Slack by `GitHub-Hookshot/ab12`" in post.all_text()
    fake_codebuild.finish(build["id"], "SUCCEEDED")
    await fake_slack.wait_for("chat.update", lambda c: "succeeded" in c.text)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_builds_of_other_projects_are_ignored(
    polling_bot: RunningBot, fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    fake_codebuild.add_project("someone-elses")
    fake_codebuild.start_external_build("someone-elses")
    fake_codebuild.start_external_build("frontend-dev")

    await fake_slack.wait_for("chat.postMessage")
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert fake_codebuild.requests_for("ListBuildsForProject")
    assert all(
        r["projectName"] != "someone-elses"
        for r in fake_codebuild.requests_for("ListBuildsForProject")
    )
