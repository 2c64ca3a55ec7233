"""`/build status` and `/build cancel`, through the real endpoint."""

from __future__ import annotations

import json

from bot.records import BuildRecord
from bot.server import RunningBot
from standins.codebuild import FakeCodeBuild
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack
from standins.slack_requests import SlackAppClient
from tests.conftest import REQUESTER


async def start(app: SlackAppClient, slack: FakeSlack, text: str, count: int) -> None:
    await app.command(text, user_id=REQUESTER, response_url=slack.response_url())
    await slack.wait_for("response_url", lambda c: "Started build" in c.text, count=count)


async def test_status_lists_the_latest_builds_with_state_and_links(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    await start(events_app, fake_slack, "dev", 1)
    await start(events_app, fake_slack, "dev feature/login", 2)
    first = next(b for b in fake_codebuild.builds.values() if b["buildNumber"] == 1)
    pipeline.finish(first["id"], "SUCCEEDED")
    await fake_slack.wait_for("chat.update", lambda c: "succeeded" in c.text)

    status, ack = await events_app.command(
        "status dev", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    assert status == 200
    shown = json.dumps(ack)
    assert "*dev*" in shown
    assert "|#2>" in shown
    assert "`feature/login` in progress" in shown
    assert "|#1>" in shown
    assert "`dev` succeeded" in shown
    assert shown.index("|#2>") < shown.index("|#1>")  # newest first
    assert "console.aws.amazon.com/codesuite/codebuild" in shown
    assert ack.get("response_type", "ephemeral") == "ephemeral"


async def test_status_without_environment_covers_every_environment(
    events_app: SlackAppClient, fake_slack: FakeSlack
) -> None:
    _, ack = await events_app.command(
        "status", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    shown = json.dumps(ack)
    assert "*dev*" in shown
    assert "*prod*" in shown
    assert "no builds yet" in shown


async def test_cancel_by_number_stops_the_build_and_updates_its_message(
    events_bot: RunningBot,
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
) -> None:
    await start(events_app, fake_slack, "dev", 1)
    [build_id] = fake_codebuild.builds
    post = fake_slack.calls_to("chat.postMessage")[0]

    status, ack = await events_app.command(
        "cancel 1", user_id=REQUESTER, response_url=fake_slack.response_url()
    )

    assert status == 200
    assert "Stopping build `1`" in ack["text"]
    reply = await fake_slack.wait_for("response_url", lambda c: "Stopped build #1" in c.text)
    assert reply.params.get("response_type", "ephemeral") == "ephemeral"
    assert fake_codebuild.requests_for("StopBuild") == [{"id": build_id}]
    update = await fake_slack.wait_for("chat.update", lambda c: "stopped" in c.text)
    assert update.params["ts"] == post.result["ts"]
    record = await events_bot.services.store.get(BuildRecord, build_id)
    assert record is not None
    assert record.status == "STOPPED"


async def test_cancel_of_a_finished_or_unknown_build_says_so(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    await start(events_app, fake_slack, "dev", 1)
    [build_id] = fake_codebuild.builds
    pipeline.finish(build_id, "SUCCEEDED")
    await fake_slack.wait_for("chat.update", lambda c: "succeeded" in c.text)

    await events_app.command(
        f"cancel {build_id}", user_id=REQUESTER, response_url=fake_slack.response_url()
    )
    finished = await fake_slack.wait_for("response_url", lambda c: "nothing to stop" in c.text)
    assert "already succeeded" in finished.text

    await events_app.command("cancel 99", user_id=REQUESTER, response_url=fake_slack.response_url())
    unknown = await fake_slack.wait_for("response_url", lambda c: "`99`" in c.text)
    assert "I know no recent build" in unknown.text
    assert fake_codebuild.requests_for("StopBuild") == []
