"""Shared fixtures: moto and the stand-ins on loopback, and the real bot wired to them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import aiohttp
import boto3
import pytest

from bot.server import RunningBot, running_bot
from bot.services import load_services
from standins.codebuild import FakeCodeBuild
from standins.moto_server import MotoServer
from standins.pipeline import BuildPipeline
from standins.slack_api import FakeSlack
from standins.slack_requests import SlackAppClient

T = TypeVar("T")

REGION = "ap-northeast-2"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
REQUESTER = "U0ENGINEER1"

ENVIRONMENTS_YAML = """
region: ap-northeast-2
environments:
  dev:
    channel: C0DEVCHANNEL
    build:
      project: frontend-dev
      source_version: dev
    image:
      repository: frontend
    deploy:
      instances: {Environment: dev}
      container: frontend
      run_args: ["-p", "3000:3000"]
      approvers: [U0APPROVER1, S0DEPLOYERS]
  prod:
    channel: C0PRODCHANNEL
    build:
      project: frontend-prod
      source_version: main
      compute_type: BUILD_GENERAL1_LARGE
    image:
      repository: frontend
"""

logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Credentials and endpoints that reach only moto on loopback; a fresh moto account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    moto.reset()
    return moto


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(usergroups={"S0DEPLOYERS": ["U0APPROVER2", "U0APPROVER3"]})
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def fake_codebuild(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeCodeBuild]:
    codebuild = FakeCodeBuild(region=REGION)
    codebuild.add_project("frontend-dev", source_version="dev")
    codebuild.add_project("frontend-prod", source_version="main")
    await codebuild.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEBUILD", codebuild.url)
    yield codebuild
    await codebuild.stop()


@pytest.fixture
def environments_file(tmp_path: Path) -> Path:
    path = tmp_path / "shipbot.yml"
    path.write_text(ENVIRONMENTS_YAML, encoding="utf-8")
    return path


@pytest.fixture
def bot_environ(tmp_path: Path, fake_slack: FakeSlack, environments_file: Path) -> dict[str, str]:
    """The process environment an operator would set, pointing at the stand-ins."""
    return {
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SHIPBOT_CONFIG": str(environments_file),
        "SHIPBOT_STORE": f"sqlite:///{tmp_path / 'shipbot.sqlite3'}",
        "SHIPBOT_HOST": "127.0.0.1",
        "PORT": "0",
    }


@pytest.fixture
async def bot(
    bot_environ: dict[str, str], fake_codebuild: FakeCodeBuild
) -> AsyncIterator[RunningBot]:
    services = load_services(bot_environ)
    async with running_bot(services) as running:
        yield running


@pytest.fixture
async def slack_app(bot: RunningBot) -> AsyncIterator[SlackAppClient]:
    async with aiohttp.ClientSession() as session:
        yield SlackAppClient(session, f"{bot.url}/slack/events", SIGNING_SECRET)


@pytest.fixture
def queue_url(aws: MotoServer) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    response = sqs.create_queue(QueueName="shipbot-events", Attributes={"VisibilityTimeout": "1"})
    return str(response["QueueUrl"])


@pytest.fixture
def pipeline(fake_codebuild: FakeCodeBuild, queue_url: str) -> BuildPipeline:
    return BuildPipeline(
        fake_codebuild,
        logs_client=boto3.client("logs", region_name=REGION),
        sqs_client=boto3.client("sqs", region_name=REGION),
        queue_url=queue_url,
    )


@pytest.fixture
async def events_bot(
    bot_environ: dict[str, str], fake_codebuild: FakeCodeBuild, queue_url: str
) -> AsyncIterator[RunningBot]:
    environ = {
        **bot_environ,
        "SHIPBOT_EVENTS_QUEUE_URL": queue_url,
        "SHIPBOT_QUEUE_WAIT_SECONDS": "1",
        "SHIPBOT_POLL_SECONDS": "3600",  # events only: reconciliation is tested on its own
        "SHIPBOT_STATUS_UPDATE_SECONDS": "0.3",
    }
    async with running_bot(load_services(environ)) as running:
        yield running


@pytest.fixture
async def events_app(events_bot: RunningBot) -> AsyncIterator[SlackAppClient]:
    async with aiohttp.ClientSession() as session:
        yield SlackAppClient(session, f"{events_bot.url}/slack/events", SIGNING_SECRET)


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 5.0, every: float = 0.05
) -> T:
    """Wait, bounded, until `check` returns something truthy (the bot works in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)
