"""Settings and the environments file: defaults, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import (
    DEFAULT_ENVIRONMENT_TYPE,
    DEFAULT_IMAGE,
    ConfigError,
    load_environments,
    load_settings,
    parse_environments,
)

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
environments:
  dev:
    channel: C0DEVCHANNEL
    build: {project: frontend-dev, source_version: dev}
    image: {repository: frontend}
"""


def test_example_file_is_valid_and_uses_arm64_defaults() -> None:
    environments = load_environments(ROOT / "shipbot.example.yml")

    dev = environments.environments["dev"]
    assert environments.region == "ap-northeast-2"
    assert dev.build.image == DEFAULT_IMAGE == "aws/codebuild/amazonlinux-aarch64-standard:3.0"
    assert dev.build.environment_type == DEFAULT_ENVIRONMENT_TYPE == "ARM_CONTAINER"
    assert dev.build.compute_type is None
    assert dev.deploy is not None
    assert dev.deploy.instances == {"Environment": "dev"}
    assert dev.deploy.approvers == ["U0APPROVER1", "S0DEPLOYERS"]
    assert environments.environments["prod"].deploy is not None
    assert environments.environments["prod"].deploy.required_approvals == 2
    assert environments.unknown_keys() == []


def test_minimal_file_fills_defaults() -> None:
    environments = parse_environments(MINIMAL, "shipbot.yml")

    assert environments.region is None
    assert environments.environments["dev"].deploy is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("environments: {}", "shipbot.yml: environments: "),
        (
            MINIMAL.replace("project: frontend-dev, ", ""),
            "environments.dev.build.project is required",
        ),
        (
            MINIMAL.replace("channel: C0DEVCHANNEL", "channel: '#dev general'"),
            "environments.dev.channel",
        ),
        (MINIMAL.replace("  dev:", "  help:"), "reserved for a /build sub-command"),
        (MINIMAL.replace("  dev:", "  Dev Env:"), "must be lower-case"),
        ("- a\n- b\n", "must be a mapping"),
        ("environments: [", "not valid YAML"),
        (
            MINIMAL
            + "    deploy: {instances: {Environment: dev}, container: 'a;b', approvers: [U1AA]}\n",
            "environments.dev.deploy.container",
        ),
        (
            MINIMAL + "    deploy: {instances: {E: d}, container: web, approvers: [U1AA], "
            "required_approvals: 2}\n",
            "only 1 approver(s) are listed",
        ),
        (
            MINIMAL + "    deploy: {instances: {E: d}, container: web, approvers: [bob]}\n",
            "environments.dev.deploy.approvers.0",
        ),
    ],
)
def test_bad_environments_file_names_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_environments(text, "shipbot.yml")

    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_unknown_keys_are_reported_not_fatal() -> None:
    text = MINIMAL.replace("source_version: dev", "source_version: dev, sorce: x") + "colour: 1\n"

    environments = parse_environments(text, "shipbot.yml")

    assert environments.unknown_keys() == ["colour", "environments.dev.build.sorce"]


def test_settings_defaults_and_env_names() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})

    assert settings.port == 3000
    assert settings.config_path == Path("shipbot.yml")
    assert settings.store_url == "sqlite:///shipbot.sqlite3"
    assert settings.slack_app_token is None
    assert settings.slack_api_url is None


def test_settings_read_every_documented_variable() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_API_URL": "http://127.0.0.1:1/api",
            "SHIPBOT_CONFIG": "/etc/shipbot.yml",
            "SHIPBOT_STORE": "sqlite:////var/lib/shipbot.db",
            "PORT": "8080",
        }
    )

    assert settings.slack_app_token is not None
    assert settings.slack_api_url == "http://127.0.0.1:1/api/"
    assert settings.config_path == Path("/etc/shipbot.yml")
    assert settings.store_url == "sqlite:////var/lib/shipbot.db"
    assert settings.port == 8080


def test_bad_settings_name_each_variable_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_BOT_TOKEN": "xoxp-user-token-secret", "PORT": "http"})

    problems = "\n".join(caught.value.problems)
    assert "SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'" in problems
    assert "SLACK_SIGNING_SECRET is not set" in problems
    assert "PORT:" in problems
    assert "xoxp-user-token-secret" not in problems


def test_unsafe_run_args_are_refused_at_load_time() -> None:
    text = (
        MINIMAL + "    deploy: {instances: {E: d}, container: web, approvers: [U1AA], "
        "run_args: ['--name', 'other']}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_environments(text, "shipbot.yml")
    assert any("environments.dev.deploy.run_args" in p for p in caught.value.problems)
