"""Builds every outside client once, so handlers get them injected and tests swap stand-ins."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import (
    ConfigError,
    EnvironmentsFile,
    Settings,
    load_environments,
    load_settings,
)
from integrations.aws import make_client
from integrations.codebuild import CodeBuild
from integrations.ec2 import Ec2
from integrations.ecr import Ecr, fetch_url
from integrations.logs import BuildLogs
from integrations.queue import EventQueue
from integrations.slack import SlackChat, SlackDirectory, make_web_client
from integrations.ssm import Ssm
from integrations.store import Store, open_store

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    environments: EnvironmentsFile
    region: str
    slack_client: AsyncWebClient
    chat: SlackChat
    codebuild: CodeBuild
    logs: BuildLogs
    queue: EventQueue | None
    ecr: Ecr
    ec2: Ec2
    ssm: Ssm
    directory: SlackDirectory
    store: Store
    clock: Callable[[], datetime] = field(default=utc_now)

    def environment_of_project(self, project: str) -> str | None:
        """The environment whose CodeBuild project this is, if any."""
        for name, environment in self.environments.environments.items():
            if environment.build.project == project:
                return name
        return None

    async def close(self) -> None:
        await self.store.close()


def resolve_region(environments: EnvironmentsFile) -> str:
    """The environments file's region, else the AWS default chain (AWS_REGION, profile…)."""
    region = environments.region or boto3.session.Session().region_name
    if not region:
        raise ConfigError(
            [
                "no AWS region: set `region:` in the environments file, "
                "or AWS_REGION in the environment"
            ]
        )
    return str(region)


def load_services(environ: Mapping[str, str]) -> Services:
    """Settings, environments file and clients, or ConfigError naming every problem found."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        problems.extend(exc.problems)
    config_path = (
        settings.config_path if settings else Path(environ.get("SHIPBOT_CONFIG", "shipbot.yml"))
    )
    try:
        environments = load_environments(config_path)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or settings is None:
        raise ConfigError(problems)
    for key in environments.unknown_keys():
        log.warning("%s: unknown key %s is ignored (typo?)", config_path, key)
    return build_services(settings, environments)


def build_services(settings: Settings, environments: EnvironmentsFile) -> Services:
    region = resolve_region(environments)
    session = boto3.session.Session(region_name=region)
    slack_client = make_web_client(
        settings.slack_bot_token.get_secret_value(), settings.slack_api_url
    )
    return Services(
        settings=settings,
        environments=environments,
        region=region,
        slack_client=slack_client,
        chat=SlackChat(slack_client),
        codebuild=CodeBuild(make_client("codebuild", region, session=session)),
        logs=BuildLogs(make_client("logs", region, session=session)),
        ecr=Ecr(make_client("ecr", region, session=session), config_fetcher=fetch_url),
        ec2=Ec2(make_client("ec2", region, session=session)),
        ssm=Ssm(make_client("ssm", region, retries=False, session=session)),
        directory=SlackDirectory(slack_client),
        queue=(
            EventQueue(
                make_client("sqs", region, session=session),
                settings.events_queue_url,
                wait_seconds=settings.queue_wait_seconds,
            )
            if settings.events_queue_url
            else None
        ),
        store=open_store(settings.store_url),
    )
