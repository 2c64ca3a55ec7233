"""Parsing `/build`, checking refs and deciding the StartBuild request (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.builds import (
    CancelCommand,
    HelpCommand,
    StartBuildCommand,
    StatusCommand,
    build_console_url,
    build_request,
    check_ref,
    idempotency_token,
    matching_builds,
    parse_build_command,
)
from bot.config import parse_environments
from bot.errors import InvalidRefError, UnknownEnvironmentError, UsageError
from bot.records import BuildRecord

ENVIRONMENTS = parse_environments(
    """
environments:
  dev:
    channel: C0DEV
    build: {project: frontend-dev, source_version: dev}
    image: {repository: frontend}
  prod:
    channel: C0PROD
    build: {project: frontend-prod, source_version: main, compute_type: BUILD_GENERAL1_LARGE,
            image: "aws/codebuild/amazonlinux-aarch64-standard:2.0"}
    image: {repository: frontend}
""",
    "test",
)


@pytest.mark.parametrize("text", ["", "   ", "help", "Help"])
def test_help(text: str) -> None:
    assert parse_build_command(text, ENVIRONMENTS) == HelpCommand()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dev", StartBuildCommand(environment="dev", ref=None)),
        ("dev feature/login", StartBuildCommand(environment="dev", ref="feature/login")),
        ("  prod   v1.2.3 ", StartBuildCommand(environment="prod", ref="v1.2.3")),
    ],
)
def test_start(text: str, expected: StartBuildCommand) -> None:
    assert parse_build_command(text, ENVIRONMENTS) == expected


def test_unknown_environment_lists_known() -> None:
    with pytest.raises(UnknownEnvironmentError) as caught:
        parse_build_command("qa main", ENVIRONMENTS)
    assert "`qa`" in caught.value.user_message
    assert "`dev`, `prod`" in caught.value.user_message


def test_too_many_words() -> None:
    with pytest.raises(UsageError, match="Too many arguments"):
        parse_build_command("dev a b", ENVIRONMENTS)


@pytest.mark.parametrize(
    "ref",
    [
        "main",
        "feature/login",
        "release-2024.05",
        "v1.2.3",
        "3f9c2ab",
        "0123456789abcdef0123456789abcdef01234567",
        "pr/25",
        "refs/heads/main",
        "user@fix_bug+2",
        "a" * 200,
    ],
)
def test_plausible_refs_pass(ref: str) -> None:
    check_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "a" * 201,
        "feat x",
        "feat;rm -rf",
        "$(id)",
        "`id`",
        "main..dev",
        "-x",
        "feature/",
        "branch.lock",
        "a//b",
        "a/.hidden",
        "main@{1}",
        "@",
        "a|b",
        "a&b",
        "a>b",
        "a\\b",
        "a~1",
        "a^",
        "a:b",
        "a*",
        "a?",
        "a[1]",
        "ünïcode",
        "a'b",
        'a"b',
    ],
)
def test_implausible_refs_are_refused(ref: str) -> None:
    with pytest.raises(InvalidRefError):
        check_ref(ref)


def test_build_request_asks_for_arm64_and_passes_who_and_where() -> None:
    request = build_request(
        "dev", ENVIRONMENTS.environments["dev"], ref=None, requested_by="U1", request_key="t1"
    )

    assert request.project == "frontend-dev"
    assert request.source_version == "dev"
    assert request.environment_type == "ARM_CONTAINER"
    assert request.image == "aws/codebuild/amazonlinux-aarch64-standard:3.0"
    assert request.compute_type is None
    assert request.environment_variables == {
        "SHIPBOT_REQUESTED_BY": "U1",
        "SHIPBOT_ENVIRONMENT": "dev",
    }


def test_build_request_uses_ref_and_environment_overrides() -> None:
    request = build_request(
        "prod", ENVIRONMENTS.environments["prod"], ref="v2", requested_by="U1", request_key="t1"
    )

    assert request.source_version == "v2"
    assert request.compute_type == "BUILD_GENERAL1_LARGE"
    assert request.image == "aws/codebuild/amazonlinux-aarch64-standard:2.0"


def test_idempotency_token_is_stable_per_request_and_differs_between_requests() -> None:
    assert idempotency_token("trigger-1") == idempotency_token("trigger-1")
    assert idempotency_token("trigger-1") != idempotency_token("trigger-2")
    assert len(idempotency_token("x")) <= 64


def test_console_url_from_arn() -> None:
    arn = "arn:aws:codebuild:ap-northeast-2:123456789012:build/frontend-dev:0a1b-2c3d"

    assert build_console_url(arn, "ap-northeast-2") == (
        "https://ap-northeast-2.console.aws.amazon.com/codesuite/codebuild/123456789012/"
        "projects/frontend-dev/build/frontend-dev%3A0a1b-2c3d/?region=ap-northeast-2"
    )


def test_status_with_and_without_environment() -> None:
    assert parse_build_command("status", ENVIRONMENTS) == StatusCommand(environment=None)
    assert parse_build_command("status prod", ENVIRONMENTS) == StatusCommand(environment="prod")
    with pytest.raises(UnknownEnvironmentError):
        parse_build_command("status qa", ENVIRONMENTS)


@pytest.mark.parametrize(
    ("text", "environment", "target"),
    [
        ("cancel 42", None, "42"),
        ("cancel dev 42", "dev", "42"),
        ("cancel frontend-dev:0a1b-2c3d", None, "frontend-dev:0a1b-2c3d"),
    ],
)
def test_cancel_targets(text: str, environment: str | None, target: str) -> None:
    assert parse_build_command(text, ENVIRONMENTS) == CancelCommand(
        environment=environment, target=target
    )


@pytest.mark.parametrize("text", ["cancel", "cancel a b c", "cancel $(id)", "cancel qa 4"])
def test_bad_cancel(text: str) -> None:
    with pytest.raises(UsageError):
        parse_build_command(text, ENVIRONMENTS)


def _record(build_id: str, number: int, environment: str = "dev") -> BuildRecord:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return BuildRecord(
        build_id=build_id,
        build_arn=f"arn:aws:codebuild:ap-northeast-2:123456789012:build/{build_id}",
        build_number=number,
        project=build_id.split(":")[0],
        environment=environment,
        source_version="main",
        channel="C0DEV",
        console_url="u",
        created_at=now,
        updated_at=now,
    )


def test_matching_builds_by_number_id_uuid_and_arn() -> None:
    dev = _record("frontend-dev:aaa", 7)
    prod = _record("frontend-prod:bbb", 7, "prod")
    both = [dev, prod]

    assert matching_builds(both, CancelCommand(environment=None, target="7")) == both
    assert matching_builds(both, CancelCommand(environment="prod", target="7")) == [prod]
    assert matching_builds(both, CancelCommand(environment=None, target="bbb")) == [prod]
    assert matching_builds(both, CancelCommand(environment=None, target=dev.build_arn)) == [dev]
    assert matching_builds(both, CancelCommand(environment=None, target="8")) == []
