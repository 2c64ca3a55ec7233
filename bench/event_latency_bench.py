"""Event → Slack latency: from a CodeBuild event sent to SQS until its status update reaches Slack.

Run: python bench/event_latency_bench.py [--events 200]. Everything runs on loopback in this
process: moto (SQS) in a thread, the fake Slack Web API and the CodeBuild stand-in on the
asyncio loop, and the real bot started as the tests start it. Prints plain numbers for three
scenarios: 1) one event at a time over distinct builds (the target: p99 < 1 s), 2) phase events
crowded onto a few builds, so the bot's per-build chat.update coalescing shows, 3) a burst of
new builds' first events sent back to back. Stops by itself; --deadline bounds the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, report_target, run_on_loopback, summary
from bot.events import PHASE_ORDER
from bot.server import running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack, SlackCall

REGION = "ap-northeast-2"
PROJECT = "frontend-bench"
CHANNEL = "C0BENCHCHAN"
TARGET_P99_SECONDS = 1.0
# The bot's per-build chat.update coalescing interval (SHIPBOT_STATUS_UPDATE_SECONDS), left at
# its default so the numbers are the ones production sees.
STATUS_UPDATE_SECONDS = 1.0
# Scenario 1 only touches a build again once this long after its last Slack call, so the
# coalescing interval can never add to what it measures (the bot starts its interval timer when
# Slack answers, a few milliseconds after the call arrives).
COALESCE_MARGIN_SECONDS = 0.2
# Every phase the status line shows after QUEUED, in CodeBuild's order.
PHASES = PHASE_ORDER[2:-1]
# Scenario 1's build lifecycle: start (a new message), three phase events, the final state.
LIFECYCLE = ("PROVISIONING", "INSTALL", "BUILD", "SUCCEEDED")

ENVIRONMENTS_YAML = f"""
region: {REGION}
environments:
  bench:
    channel: {CHANNEL}
    build:
      project: {PROJECT}
      source_version: main
    image:
      repository: frontend
"""

log = logging.getLogger("bench")


@dataclass
class Tracked:
    """One build the benchmark drives, and where its Slack message is."""

    build_id: str
    number: int
    ts: str = ""
    steps: list[str] = field(default_factory=lambda: list(LIFECYCLE))
    last_slack_at: float = float("-inf")


@dataclass
class Sample:
    kind: str  # "post" (new build), "phase" (chat.update) or "final" (chat.update)
    seconds: float


def showing(index: int) -> Callable[[SlackCall], bool]:
    """Matches a status message that shows PHASES[index], a later phase, or the final state."""
    return lambda call: shown_phase(call) >= index


def shown_phase(call: SlackCall) -> int:
    """How far a status message shows the build: index into PHASES, len(PHASES) when final."""
    text = call.all_text()
    if "in progress" not in call.text:
        return len(PHASES)
    for index in range(len(PHASES) - 1, -1, -1):
        if f"*{PHASES[index].lower()}* :hourglass" in text:
            return index
    return -1


class Rig:
    """The stand-ins, the queue and a pipeline that delivers the stand-in's events to it."""

    def __init__(
        self, slack: FakeSlack, codebuild: FakeCodeBuild, sqs: Any, queue_url: str, wait: float
    ) -> None:
        self.slack = slack
        self.codebuild = codebuild
        self.sqs = sqs
        self.queue_url = queue_url
        self.wait = wait
        self.pipeline = BuildPipeline(
            codebuild,
            logs_client=boto3.client("logs", region_name=REGION),
            sqs_client=sqs,
            queue_url=queue_url,
        )

    async def send(self, event: dict[str, Any]) -> float:
        """Deliver one event; the clock starts right before the SQS SendMessage call."""
        t0 = time.monotonic()
        # A blocking call on the loop thread would stall the bot under test meanwhile.
        await asyncio.to_thread(self.pipeline.deliver, event)
        return t0

    async def settle(self) -> None:
        """Wait until the bot deleted every message, so the next event finds it idle."""
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            attributes = await asyncio.to_thread(
                self.sqs.get_queue_attributes,
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            if not any(int(v) for v in attributes["Attributes"].values()):
                return
            await asyncio.sleep(0.005)
        raise TimeoutError(f"the bot did not drain the queue within {self.wait}s")

    def new_build(self) -> tuple[Tracked, dict[str, Any]]:
        build = self.codebuild.start_external_build(PROJECT)
        tracked = Tracked(build_id=build["id"], number=int(build["buildNumber"]))
        return tracked, self.codebuild.state_change_event(tracked.build_id)

    async def await_post(self, tracked: Tracked, t0: float) -> SlackCall:
        prefix = f"Build #{tracked.number} of {PROJECT}"
        post = await self.slack.wait_for(
            "chat.postMessage",
            lambda c: c.at >= t0 and c.text.startswith(prefix),
            timeout=self.wait,
        )
        tracked.ts = str(post.result["ts"])
        tracked.last_slack_at = post.at
        return post

    async def await_update(
        self, tracked: Tracked, t0: float, at_least: Callable[[SlackCall], bool]
    ) -> SlackCall:
        update = await self.slack.wait_for(
            "chat.update",
            lambda c: c.at >= t0 and c.params.get("ts") == tracked.ts and at_least(c),
            timeout=self.wait,
        )
        tracked.last_slack_at = update.at
        return update

    async def start(self) -> tuple[Tracked, Sample]:
        tracked, event = self.new_build()
        t0 = await self.send(event)
        post = await self.await_post(tracked, t0)
        return tracked, Sample("post", post.at - t0)

    async def step(self, tracked: Tracked) -> Sample:
        """Move the build one lifecycle step on and time the chat.update that shows it."""
        step = tracked.steps.pop(0)
        if step == "SUCCEEDED":
            event = self.pipeline.finish(tracked.build_id, step, deliver=False)
            t0 = await self.send(event)
            update = await self.await_update(tracked, t0, lambda c: "succeeded" in c.text)
            return Sample("final", update.at - t0)
        event = self.pipeline.enter_phase(tracked.build_id, step, deliver=False)
        index = PHASES.index(step)
        t0 = await self.send(event)
        update = await self.await_update(tracked, t0, showing(index))
        return Sample("phase", update.at - t0)


async def distinct_builds(rig: Rig, events: int) -> list[Sample]:
    """One event at a time; a build is touched again only after the coalescing interval."""
    samples: list[Sample] = []
    active: list[Tracked] = []
    while len(samples) < events:
        now = time.monotonic()
        ready = [
            b
            for b in active
            if now - b.last_slack_at >= STATUS_UPDATE_SECONDS + COALESCE_MARGIN_SECONDS
        ]
        if ready:
            tracked = min(ready, key=lambda b: b.last_slack_at)
            samples.append(await rig.step(tracked))
            if not tracked.steps:
                active.remove(tracked)
        else:
            tracked, sample = await rig.start()
            active.append(tracked)
            samples.append(sample)
        await rig.settle()
    return samples


async def coalesced(rig: Rig, events: int, builds: int, gap: float) -> tuple[list[float], int]:
    """`events` phase events round-robin over `builds` builds, one every `gap` seconds."""
    tracked = []
    for _ in range(builds):
        build, _ = await rig.start()
        tracked.append(build)
    await rig.settle()
    first_update = len(rig.slack.calls)
    sent: list[tuple[Tracked, int, float]] = []
    next_at = time.monotonic()
    for i in range(events):
        build = tracked[i % builds]
        index = i // builds
        event = rig.pipeline.enter_phase(build.build_id, PHASES[index], deliver=False)
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        sent.append((build, index, await rig.send(event)))
        next_at += gap
    # The newest phase of each build is shown at last; every earlier one was shown by then.
    for build in tracked:
        last = max(index for b, index, _ in sent if b is build)
        await rig.await_update(build, 0.0, showing(last))
    await rig.settle()
    updates = [c for c in rig.slack.calls[first_update:] if c.method == "chat.update"]
    latencies = []
    for build, index, t0 in sent:
        shows = showing(index)
        shown = next(
            c for c in updates if c.params.get("ts") == build.ts and c.at >= t0 and shows(c)
        )
        latencies.append(shown.at - t0)
    return latencies, len(updates)


async def burst(rig: Rig, events: int) -> list[float]:
    """`events` new builds' first events sent back to back: the queue holds several at once."""
    pending = []
    for _ in range(events):
        tracked, event = rig.new_build()
        pending.append((tracked, await rig.send(event)))
    latencies = []
    for tracked, t0 in pending:
        post = await rig.await_post(tracked, t0)
        latencies.append(post.at - t0)
    await rig.settle()
    return latencies


async def run(args: argparse.Namespace) -> None:
    slack = FakeSlack()
    await slack.start()
    codebuild = FakeCodeBuild(region=REGION)
    codebuild.add_project(PROJECT)
    await codebuild.start()
    os.environ["AWS_ENDPOINT_URL_CODEBUILD"] = codebuild.url
    sqs = boto3.client("sqs", region_name=REGION)
    created = await asyncio.to_thread(sqs.create_queue, QueueName="shipbot-events-bench")
    queue_url = str(created["QueueUrl"])
    rig = Rig(slack, codebuild, sqs, queue_url, wait=args.queue_wait + 10.0)
    try:
        with tempfile.TemporaryDirectory(prefix="event-latency-bench-") as tmp:
            config = Path(tmp) / "shipbot.yml"
            config.write_text(ENVIRONMENTS_YAML, encoding="utf-8")
            environ = {
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": "bench-signing-secret-0123456789abcdef",
                "SLACK_API_URL": slack.api_url,
                "SHIPBOT_CONFIG": str(config),
                "SHIPBOT_STORE": f"sqlite:///{Path(tmp) / 'shipbot.sqlite3'}",
                "SHIPBOT_HOST": "127.0.0.1",
                "PORT": "0",
                "SHIPBOT_EVENTS_QUEUE_URL": queue_url,
                "SHIPBOT_QUEUE_WAIT_SECONDS": str(args.queue_wait),
                "SHIPBOT_POLL_SECONDS": "3600",  # events alone drive the updates
                "SHIPBOT_STATUS_UPDATE_SECONDS": str(STATUS_UPDATE_SECONDS),
            }
            async with running_bot(load_services(environ)):
                await _scenarios(rig, args)
    finally:
        # The bot's last long poll still blocks a worker thread, and asyncio.run waits for it
        # on exit: one more message ends that poll at once.
        await asyncio.to_thread(sqs.send_message, QueueUrl=queue_url, MessageBody="wake up")
        await codebuild.stop()
        await slack.stop()


async def _scenarios(rig: Rig, args: argparse.Namespace) -> None:
    warm = await distinct_builds(rig, args.warmup)
    print(f"warm-up: {len(warm)} events, not counted")

    samples = await distinct_builds(rig, args.events)
    overall = [s.seconds for s in samples]
    print()
    print("scenario 1: distinct builds, one event at a time (the bot idle before each)")
    print("  a build gets its next event only after the coalescing interval, so it adds nothing")
    print(f"  all events             {summary(overall)}")
    for kind, label in (
        ("post", "new build -> postMessage"),
        ("phase", "phase -> chat.update    "),
        ("final", "final -> chat.update    "),
    ):
        values = [s.seconds for s in samples if s.kind == kind]
        if values:
            print(f"  {label} {summary(values)}")
    print(f"  {report_target(percentile(overall, 99), TARGET_P99_SECONDS)}")

    if args.coalesce_events:
        events = min(args.coalesce_events, args.coalesce_builds * len(PHASES))
        latencies, updates = await coalesced(rig, events, args.coalesce_builds, args.coalesce_gap)
        print()
        print(
            f"scenario 2: coalescing visible: {events} phase events over {args.coalesce_builds}"
            f" builds, one every {args.coalesce_gap * 1000:.0f} ms"
        )
        print(
            f"  each build gets an event every {args.coalesce_builds * args.coalesce_gap:.2f} s,"
            f" under the {STATUS_UPDATE_SECONDS:.1f} s interval; latency is until Slack shows the"
            " event's phase or a later one"
        )
        print(f"  all events             {summary(latencies)}")
        print(f"  chat.update calls {updates} for {events} events")

    if args.burst:
        latencies = await burst(rig, args.burst)
        print()
        print(f"scenario 3: burst: {args.burst} new builds' first events sent back to back")
        print(f"  new build -> postMessage {summary(latencies)}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events in scenario 1")
    parser.add_argument("--warmup", type=int, default=10, help="events run first, not counted")
    parser.add_argument(
        "--queue-wait", type=int, default=20, help="SHIPBOT_QUEUE_WAIT_SECONDS (1..20)"
    )
    parser.add_argument("--coalesce-events", type=int, default=40, help="scenario 2; 0 skips it")
    parser.add_argument("--coalesce-builds", type=int, default=5, help="builds in scenario 2")
    parser.add_argument(
        "--coalesce-gap", type=float, default=0.05, help="seconds between events in scenario 2"
    )
    parser.add_argument("--burst", type=int, default=50, help="events in scenario 3; 0 skips it")
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    if not 1 <= args.queue_wait <= 20:
        parser.error("--queue-wait must be 1..20")

    print(__doc__.splitlines()[0])
    print(
        "latency = time.monotonic() at the fake Slack receiving the matching chat.postMessage /"
        " chat.update, minus time.monotonic() right before SQS SendMessage"
    )
    print(
        f"bot: SHIPBOT_QUEUE_WAIT_SECONDS={args.queue_wait} (long polling)"
        f"  SHIPBOT_STATUS_UPDATE_SECONDS={STATUS_UPDATE_SECONDS}  reconciliation off"
    )

    return run_on_loopback(lambda: run(args), region=REGION, deadline=args.deadline)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
