"""Approve click → SSM SendCommand: from a signed Approve click POSTed to /slack/events until SSM.

Run: python bench/approve_latency_bench.py [--requests 50]. Everything runs on loopback in this
process: moto (ECR, EC2) in a thread, the fake Slack Web API, the CodeBuild and SSM stand-ins
on the asyncio loop, and the real bot started as the tests start it. Each request is a fresh
`/deploy dev v1` by one engineer, approved by another once the bot has posted it; the next one
starts only when the deployment finished, so every click finds the bot idle. Prints plain
numbers: the click's latency to SendCommand (the target: p99 < 1 s) and its HTTP
acknowledgement (Slack gives up after 3 s). Stops by itself; --deadline bounds the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, report_target, run_on_loopback, summary
from bot.approvals import APPROVE_ACTION
from bot.server import running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.fleet import launch_instances, push_image
from standins.slack_api import FakeSlack, SlackCall
from standins.slack_requests import SlackAppClient, block_actions_payload
from standins.ssm import FakeSsm

REGION = "ap-northeast-2"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
COMMIT = "3f9c2ab7d1e04c55b8a9f0e1d2c3b4a596877f10"
REQUESTER = "U0ENGINEER1"
APPROVER = "U0APPROVER1"
TARGET_P99_SECONDS = 1.0
SLACK_ACK_LIMIT_SECONDS = 3.0
# How often the bot reads running deployments from SSM: it only decides when the next request
# may start, never what is measured (the click itself sends the command).
DEPLOY_POLL_SECONDS = 0.5

# One environment is enough: dev, approved by U0APPROVER1 (U0ENGINEER1 asks, and may not).
ENVIRONMENTS_YAML = """
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
      approvers: [U0APPROVER1, S0DEPLOYERS]
"""

log = logging.getLogger("bench")


@dataclass
class Sample:
    ack: float  # until the POST answered 200
    send: float  # until the SSM stand-in received SendCommand


def is_deploy_request(call: SlackCall) -> bool:
    return ":rocket:" in call.all_text() and not call.params.get("thread_ts")


def actions_block(call: SlackCall) -> dict[str, Any]:
    [block] = [b for b in call.blocks if b.get("type") == "actions"]
    return block


def set_up_fleet(ssm: FakeSsm) -> str:
    """Two images and two Graviton instances; returns the digest `v1` deploys."""
    ecr = boto3.client("ecr", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    v1 = push_image(ecr, "frontend", ["v1", COMMIT], platforms=["linux/amd64", "linux/arm64"])
    push_image(ecr, "frontend", ["v0"], platforms=["linux/arm64"])
    for instance_id in launch_instances(ec2, ["web-1", "web-2"], {"Environment": "dev"}):
        ssm.register_instance(instance_id, {"Environment": "dev"})
    return v1


class Rig:
    """The stand-ins and a signed client of the bot's endpoint."""

    def __init__(self, slack: FakeSlack, ssm: FakeSsm, app: SlackAppClient, wait: float) -> None:
        self.slack = slack
        self.ssm = ssm
        self.app = app
        self.wait = wait

    async def request(self) -> SlackCall:
        """`/deploy dev v1`; returns the posted request once the bot has finished proposing it."""
        hook = f"deploy-{time.monotonic_ns()}"
        t0 = time.monotonic()
        status, _ = await self.app.command(
            "dev v1",
            user_id=REQUESTER,
            response_url=self.slack.response_url(hook),
            command="/deploy",
        )
        if status != 200:
            raise RuntimeError(f"/deploy answered HTTP {status}")
        # The reply comes after the message's ts is stored: only then can a person click, and
        # only then does the click's chat.update of the request happen as it does in production.
        reply = await self.slack.wait_for(
            "response_url", lambda c: c.params.get("hook") == hook, timeout=self.wait
        )
        if "needs 1 approval" not in reply.text:
            raise RuntimeError(f"the deploy request cannot be approved: {reply.text!r}")
        return await self.slack.wait_for(
            "chat.postMessage", lambda c: c.at >= t0 and is_deploy_request(c), timeout=self.wait
        )

    async def approve(self, post: SlackCall) -> Sample:
        """Click Approve; time the acknowledgement and the SendCommand it causes."""
        block = actions_block(post)
        [button] = [b for b in block["elements"] if b["action_id"] == APPROVE_ACTION]
        payload = block_actions_payload(
            user_id=APPROVER,
            channel_id=post.params["channel"],
            message_ts=str(post.result["ts"]),
            action_id=APPROVE_ACTION,
            value=button["value"],
            block_id=block["block_id"],
            response_url=self.slack.response_url(),
            message_blocks=post.blocks,
        )
        sent_before = len(self.ssm.sent_at)
        t0 = time.monotonic()
        status, _ = await self.app.action(payload)
        acked = time.monotonic()
        if status != 200:
            raise RuntimeError(f"the Approve click answered HTTP {status}")
        deadline = t0 + self.wait
        # The stand-in stamps the arrival itself, so this polling interval adds nothing.
        while len(self.ssm.sent_at) == sent_before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no SendCommand within {self.wait}s of the Approve click")
            await asyncio.sleep(0.005)
        return Sample(ack=acked - t0, send=self.ssm.sent_at[sent_before] - t0)

    async def finished(self, post: SlackCall) -> None:
        """Wait until the bot reports the deployment done, so the next click finds it idle."""
        ts = post.result["ts"]
        await self.slack.wait_for(
            "chat.update",
            lambda c: c.params.get("ts") == ts and "deployed." in c.all_text(),
            timeout=self.wait,
        )

    async def one(self) -> Sample:
        post = await self.request()
        sample = await self.approve(post)
        await self.finished(post)
        return sample


async def run(args: argparse.Namespace) -> None:
    slack = FakeSlack(usergroups={"S0DEPLOYERS": ["U0APPROVER2", "U0APPROVER3"]})
    await slack.start()
    codebuild = FakeCodeBuild(region=REGION)
    codebuild.add_project("frontend-dev", source_version="dev")
    await codebuild.start()
    ssm = FakeSsm(region=REGION)
    await ssm.start()
    os.environ["AWS_ENDPOINT_URL_CODEBUILD"] = codebuild.url
    os.environ["AWS_ENDPOINT_URL_SSM"] = ssm.url
    try:
        digest = await asyncio.to_thread(set_up_fleet, ssm)
        with tempfile.TemporaryDirectory(prefix="approve-latency-bench-") as tmp:
            config = Path(tmp) / "shipbot.yml"
            config.write_text(ENVIRONMENTS_YAML, encoding="utf-8")
            environ = {
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "SHIPBOT_CONFIG": str(config),
                "SHIPBOT_STORE": f"sqlite:///{Path(tmp) / 'shipbot.sqlite3'}",
                "SHIPBOT_HOST": "127.0.0.1",
                "PORT": "0",
                "SHIPBOT_POLL_SECONDS": "3600",  # no builds here: reconciliation stays out
                "SHIPBOT_DEPLOY_POLL_SECONDS": str(DEPLOY_POLL_SECONDS),
            }
            async with (
                running_bot(load_services(environ)) as bot,
                aiohttp.ClientSession() as session,
            ):
                app = SlackAppClient(session, f"{bot.url}/slack/events", SIGNING_SECRET)
                rig = Rig(slack, ssm, app, wait=args.wait)
                await _measure(rig, args, digest)
    finally:
        await ssm.stop()
        await codebuild.stop()
        await slack.stop()


async def _measure(rig: Rig, args: argparse.Namespace, digest: str) -> None:
    for _ in range(args.warmup):
        await rig.one()
    print(f"warm-up: {args.warmup} requests, not counted")

    samples = [await rig.one() for _ in range(args.requests)]
    sent = rig.ssm.requests_for("SendCommand")
    if len(sent) != args.warmup + args.requests:
        raise RuntimeError(f"{len(sent)} SendCommand calls for {args.warmup + args.requests}")
    if not all(digest in "\n".join(s["Parameters"]["commands"]) for s in sent):
        raise RuntimeError("a SendCommand did not deploy the digest of v1")

    sends = [s.send for s in samples]
    acks = [s.ack for s in samples]
    print()
    print(f"{args.requests} deploy requests, each approved once the bot had posted it")
    print(f"  click -> SSM SendCommand {summary(sends)}")
    print(f"  click -> HTTP 200 (ack)  {summary(acks)}")
    print(f"  {report_target(percentile(sends, 99), TARGET_P99_SECONDS)}")
    ack_verdict = "met" if max(acks) < SLACK_ACK_LIMIT_SECONDS else "NOT met"
    print(f"  Slack's ack limit {SLACK_ACK_LIMIT_SECONDS * 1000:.0f} ms: {ack_verdict}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="approved deploy requests")
    parser.add_argument("--warmup", type=int, default=3, help="requests run first, not counted")
    parser.add_argument(
        "--wait", type=float, default=15.0, help="longest wait for one effect (seconds)"
    )
    parser.add_argument("--deadline", type=float, default=180.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")

    print(__doc__.splitlines()[0])
    print(
        "latency = time.monotonic() at the SSM stand-in receiving SendCommand, minus"
        " time.monotonic() right before the signed block_actions POST"
    )
    print(
        f"bot: SHIPBOT_DEPLOY_POLL_SECONDS={DEPLOY_POLL_SECONDS}  reconciliation off  no queue"
        f"  approver {APPROVER}, requester {REQUESTER}"
    )

    return run_on_loopback(lambda: run(args), region=REGION, deadline=args.deadline)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
