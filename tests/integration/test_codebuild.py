"""The CodeBuild integration against the stand-in: requests, retries and error mapping."""

from __future__ import annotations

import pytest

from bot.builds import BuildRequest
from bot.errors import AwsAccessDeniedError, AwsInvalidRequestError, AwsNotFoundError
from integrations.aws import make_client
from integrations.codebuild import CodeBuild
from standins.codebuild import FakeCodeBuild
from tests.conftest import REGION

REQUEST = BuildRequest(
    project="frontend-dev",
    source_version="dev",
    image="aws/codebuild/amazonlinux-aarch64-standard:3.0",
    environment_type="ARM_CONTAINER",
    compute_type="BUILD_GENERAL1_MEDIUM",
    environment_variables={"SHIPBOT_REQUESTED_BY": "U1", "SHIPBOT_ENVIRONMENT": "dev"},
    idempotency_token="shipbot-abc",
)


@pytest.fixture
async def codebuild(fake_codebuild: FakeCodeBuild) -> CodeBuild:
    return CodeBuild(make_client("codebuild", REGION))


async def test_start_build_sends_every_override(
    codebuild: CodeBuild, fake_codebuild: FakeCodeBuild
) -> None:
    build = await codebuild.start_build(REQUEST)

    [sent] = fake_codebuild.requests_for("StartBuild")
    assert sent == {
        "projectName": "frontend-dev",
        "sourceVersion": "dev",
        "imageOverride": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
        "environmentTypeOverride": "ARM_CONTAINER",
        "computeTypeOverride": "BUILD_GENERAL1_MEDIUM",
        "idempotencyToken": "shipbot-abc",
        "environmentVariablesOverride": [
            {"name": "SHIPBOT_REQUESTED_BY", "value": "U1", "type": "PLAINTEXT"},
            {"name": "SHIPBOT_ENVIRONMENT", "value": "dev", "type": "PLAINTEXT"},
        ],
    }
    assert build.build_status == "IN_PROGRESS"
    assert build.build_number == 1
    assert build.arn.endswith(f"build/{build.id}")
    [read] = await codebuild.get_builds([build.id])
    assert read.id == build.id


async def test_throttling_is_retried_with_the_same_token_and_starts_one_build(
    codebuild: CodeBuild, fake_codebuild: FakeCodeBuild
) -> None:
    fake_codebuild.fail_next("StartBuild", "ThrottlingException", "Rate exceeded")
    fake_codebuild.fail_next("StartBuild", "ThrottlingException", "Rate exceeded")

    build = await codebuild.start_build(REQUEST)

    attempts = fake_codebuild.requests_for("StartBuild")
    assert len(attempts) == 3
    assert {a["idempotencyToken"] for a in attempts} == {"shipbot-abc"}
    assert list(fake_codebuild.builds) == [build.id]


async def test_a_retried_start_returns_the_same_build(codebuild: CodeBuild) -> None:
    first = await codebuild.start_build(REQUEST)
    second = await codebuild.start_build(REQUEST)

    assert first.id == second.id


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("AccessDeniedException", AwsAccessDeniedError),
        ("ResourceNotFoundException", AwsNotFoundError),
        ("InvalidInputException", AwsInvalidRequestError),
    ],
)
async def test_aws_errors_map_to_ours(
    codebuild: CodeBuild, fake_codebuild: FakeCodeBuild, code: str, error: type[Exception]
) -> None:
    fake_codebuild.fail_next("StartBuild", code, "nope")

    with pytest.raises(error):
        await codebuild.start_build(REQUEST)
