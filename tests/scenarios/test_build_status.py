"""Live build status and failure explanations, end to end.

Events go through a real SQS queue (moto) as EventBridge delivers them, logs sit in moto's
CloudWatch Logs, CodeBuild is the stand-in, Slack is the fake; the bot is the real one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import boto3
import pytest

from bot.records import BuildRecord, ParkedEvent
from bot.server import RunningBot
from standins.codebuild import FakeCodeBuild
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack, SlackCall
from standins.slack_requests import SlackAppClient
from tests.conftest import REGION, REQUESTER, eventually

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"


def read_log_fixture(name: str) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    lines = []
    for line in (LOGS / name).read_text().splitlines():
        if line.startswith("# ") and ":" in line and not lines:
            key, value = line[2:].split(":", 1)
            headers[key.strip()] = value.strip()
        else:
            lines.append(line)
    return headers, lines


FAILING_LOGS = sorted(
    p.name for p in LOGS.glob("*.log") if read_log_fixture(p.name)[0]["expect"] != "unknown"
)


async def start_build(
    app: SlackAppClient, slack: FakeSlack, codebuild: FakeCodeBuild, text: str = "dev"
) -> tuple[str, SlackCall]:
    await app.command(text, user_id=REQUESTER, response_url=slack.response_url())
    post = await slack.wait_for("chat.postMessage")
    [build_id] = list(codebuild.builds)
    return build_id, post


def thread_replies(slack: FakeSlack) -> list[SlackCall]:
    return [c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts")]


def last_update(slack: FakeSlack) -> SlackCall:
    return slack.calls_to("chat.update")[-1]


@pytest.mark.parametrize("log_name", FAILING_LOGS)
async def test_each_failure_cause_is_explained_in_the_thread(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
    log_name: str,
) -> None:
    headers, lines = read_log_fixture(log_name)
    build_id, post = await start_build(events_app, fake_slack, fake_codebuild)
    status_ts = post.result["ts"]

    pipeline.enter_phase(build_id, "INSTALL")
    pipeline.enter_phase(build_id, "BUILD")
    pipeline.write_log(build_id, lines)
    code, _, message = headers.get(
        "phase_context",
        "COMMAND_EXECUTION_ERROR: Error while executing command: yarn build. Reason: exit status 1",
    ).partition(": ")
    pipeline.finish(
        build_id,
        headers.get("build_status", "FAILED"),
        failed_phase="BUILD",
        context=(code, message),
    )

    reply = await fake_slack.wait_for("chat.postMessage", lambda c: bool(c.params.get("thread_ts")))
    assert reply.params["thread_ts"] == status_ts
    assert reply.params["channel"] == "C0DEVCHANNEL"
    shown = reply.all_text()
    assert f"(`{headers['expect']}`)" in shown
    if "decisive" in headers:
        assert headers["decisive"] in shown
    assert "Failed phase: *build*" in shown
    assert ":bulb:" in shown
    assert "Full log>" in shown
    final = await fake_slack.wait_for(
        "chat.update", lambda c: "timed out" in c.all_text() or "failed" in c.all_text()
    )
    assert final.params["ts"] == status_ts
    assert "in progress" not in final.text


async def test_duplicate_and_out_of_order_events_show_one_true_final_state(
    events_bot: RunningBot,
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    _, lines = read_log_fixture("oom_next_build_heap_137.log")
    build_id, _ = await start_build(events_app, fake_slack, fake_codebuild)
    install = pipeline.enter_phase(build_id, "INSTALL", deliver=False)
    pipeline.write_log(build_id, lines)
    final = pipeline.finish(
        build_id,
        "FAILED",
        failed_phase="BUILD",
        context=(
            "COMMAND_EXECUTION_ERROR",
            "Error while executing command: yarn build. Reason: exit status 137",
        ),
        deliver=False,
    )

    pipeline.deliver(final)
    pipeline.deliver(final)  # at-least-once: the same event twice
    pipeline.deliver(install)  # a phase event that arrives after the final one

    await fake_slack.wait_for("chat.postMessage", lambda c: bool(c.params.get("thread_ts")))
    await asyncio.sleep(2.5)  # let every delivery (and any redelivery) be handled
    assert len(thread_replies(fake_slack)) == 1
    assert (
        len([c for c in fake_slack.calls_to("chat.postMessage") if not c.params.get("thread_ts")])
        == 1
    )
    updates = fake_slack.calls_to("chat.update")
    assert "failed" in updates[-1].all_text()
    first_final = next(i for i, u in enumerate(updates) if "failed" in u.text)
    assert all("in progress" not in u.text for u in updates[first_final:])
    [message] = [m for m in fake_slack.messages.values() if not m.get("thread_ts")]
    assert "failed" in message["text"]
    record = await events_bot.services.store.get(BuildRecord, build_id)
    assert record is not None
    assert record.status == "FAILED"
    assert record.explanation_ts is not None


async def test_build_started_by_a_webhook_gets_its_own_message_and_final_state(
    events_bot: RunningBot,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    build = fake_codebuild.start_external_build("frontend-dev", initiator="GitHub-Hookshot/7d2b1f0")
    pipeline.deliver(fake_codebuild.state_change_event(build["id"]))

    post = await fake_slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "C0DEVCHANNEL"
    shown = post.all_text()
    assert "started outside Slack by `GitHub-Hookshot/7d2b1f0`" in shown
    assert "at `pr/42`" in shown
    assert "in progress" in shown

    pipeline.enter_phase(build["id"], "BUILD")
    pipeline.finish(build["id"], "SUCCEEDED")

    final = await fake_slack.wait_for("chat.update", lambda c: "succeeded" in c.text)
    assert final.params["ts"] == post.result["ts"]
    assert thread_replies(fake_slack) == []
    record = await events_bot.services.store.get(BuildRecord, build["id"])
    assert record is not None
    assert record.status == "SUCCEEDED"
    assert record.requested_by is None


async def test_secrets_never_reach_slack(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    build_id, _ = await start_build(events_app, fake_slack, fake_codebuild)
    # The build's environment carries a secret the way a careless buildspec would.
    fake_codebuild.builds[build_id]["environment"]["environmentVariables"].append(
        {"name": "NPM_TOKEN", "value": "npm-tok-9f8e7d6c5b4a", "type": "PLAINTEXT"}
    )
    lines = [
        "[Container] 2026/12/01 10:13:12.000001 Running command yarn build",
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "fetching https://deploy:hunter2pass@registry.example.com/frontend",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "SLACK_TOKEN=xoxb-1234567890-abcdefghijklmnop",
        "npm notice using token npm-tok-9f8e7d6c5b4a",
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "[Container] 2026/12/01 10:21:40.000001 Command did not exit successfully yarn build"
        " exit status 137",
    ]
    pipeline.write_log(build_id, lines)
    pipeline.finish(
        build_id,
        "FAILED",
        failed_phase="BUILD",
        context=(
            "COMMAND_EXECUTION_ERROR",
            "Error while executing command: yarn build. Reason: exit status 137",
        ),
    )

    reply = await fake_slack.wait_for("chat.postMessage", lambda c: bool(c.params.get("thread_ts")))
    everything = json.dumps([c.params for c in fake_slack.calls])
    for secret in (
        "AKIAIOSFODNN7EXAMPLE",
        "hunter2pass",
        "eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "xoxb-1234567890-abcdefghijklmnop",
        "npm-tok-9f8e7d6c5b4a",
    ):
        assert secret not in everything
    assert "***" in reply.all_text()
    assert "(`out_of_memory`)" in reply.all_text()


async def test_unreadable_event_is_parked_not_retried(
    events_bot: RunningBot,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
    queue_url: str,
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=queue_url, MessageBody="{not an event")
    build = fake_codebuild.start_external_build("frontend-dev")
    pipeline.deliver(fake_codebuild.state_change_event(build["id"]))

    await fake_slack.wait_for("chat.postMessage")  # the good event after it still gets through
    parked = await eventually(lambda: events_bot.services.store.recent(ParkedEvent, "parked", 10))
    assert len(parked) == 1
    assert parked[0].body == "{not an event"
    assert "unreadable" in parked[0].reason
    await asyncio.sleep(1.5)  # past the visibility timeout: a parked message must not return
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


async def test_a_burst_of_phase_events_is_coalesced(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    build_id, _ = await start_build(events_app, fake_slack, fake_codebuild)
    events = [
        pipeline.enter_phase(build_id, phase, deliver=False)
        for phase in ("PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD")
    ]
    for _ in range(4):
        for event in events:
            pipeline.deliver(event)

    await fake_slack.wait_for("chat.update", lambda c: "*build* :hourglass" in c.all_text())
    await asyncio.sleep(1.0)
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) <= 4, [u.all_text()[:60] for u in updates]
    assert "*build* :hourglass" in updates[-1].all_text()


async def test_a_failure_nothing_recognises_is_still_explained_as_unknown(
    events_app: SlackAppClient,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    build_id, _ = await start_build(events_app, fake_slack, fake_codebuild)
    pipeline.write_log(
        build_id,
        [
            "[Container] 2026/12/01 10:13:12.000001 Running command ./scripts/release.sh",
            "release: nothing to do for target 'frontend'",
            "[Container] 2026/12/01 10:13:13.000001 Command did not exit successfully "
            "./scripts/release.sh exit status 2",
        ],
    )
    pipeline.finish(
        build_id,
        "FAILED",
        failed_phase="POST_BUILD",
        context=("COMMAND_EXECUTION_ERROR", "Error while executing command: ./scripts/release.sh"),
    )

    reply = await fake_slack.wait_for("chat.postMessage", lambda c: bool(c.params.get("thread_ts")))
    shown = reply.all_text()
    assert "(`unknown`)" in shown
    assert "nothing to do for target" in shown  # the last lines, for a person to read
    assert "Failed phase: *post_build*" in shown


async def test_slack_failing_once_is_retried_through_the_queue(
    events_bot: RunningBot,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
) -> None:
    fake_slack.fail_next("chat.postMessage", "fatal_error")
    build = fake_codebuild.start_external_build("frontend-dev")
    pipeline.deliver(fake_codebuild.state_change_event(build["id"]))

    posted = await fake_slack.wait_for("chat.postMessage", count=2, timeout=10)

    assert posted.result["ok"] is True

    async def recorded() -> BuildRecord | None:
        record = await events_bot.services.store.get(BuildRecord, build["id"])
        return record if record is not None and record.message_ts else None

    assert (await eventually(recorded)).message_ts == posted.result["ts"]
    assert await events_bot.services.store.recent(ParkedEvent, "parked", 10) == []


async def test_an_event_that_keeps_failing_is_parked_after_five_deliveries(
    events_bot: RunningBot,
    fake_slack: FakeSlack,
    fake_codebuild: FakeCodeBuild,
    pipeline: BuildPipeline,
    queue_url: str,
) -> None:
    fake_slack.fail_next("chat.postMessage", "fatal_error", times=20)
    build = fake_codebuild.start_external_build("frontend-dev")
    pipeline.deliver(fake_codebuild.state_change_event(build["id"]))

    await fake_slack.wait_for("chat.postMessage", count=5, timeout=20)
    parked = await eventually(
        lambda: events_bot.services.store.recent(ParkedEvent, "parked", 10), timeout=10
    )

    assert len(parked) == 1
    assert "failed 5 times" in parked[0].reason
    attempts = len(fake_slack.calls_to("chat.postMessage"))
    await asyncio.sleep(2.5)  # past the visibility timeout: a parked event does not come back
    assert len(fake_slack.calls_to("chat.postMessage")) == attempts
