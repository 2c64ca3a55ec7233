"""Settings from the process environment and the environments file, validated at the boundary."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.deploy_script import check_run_args
from bot.errors import ShipbotError

DEFAULT_IMAGE = "aws/codebuild/amazonlinux-aarch64-standard:3.0"
DEFAULT_ENVIRONMENT_TYPE = "ARM_CONTAINER"

# Words that are sub-commands of /build, so they cannot name an environment.
RESERVED_ENVIRONMENT_NAMES = frozenset({"help", "status", "cancel", "history"})

SlackChannelId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,79}$")]
SlackPrincipalId = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{2,}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class ConfigError(Exception):
    """The settings or the environments file are unusable; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Section(BaseModel):
    """Unknown keys are kept (and reported as warnings) so a newer file still loads."""

    model_config = ConfigDict(extra="allow", frozen=True)


class BuildSettings(_Section):
    project: NonEmpty
    source_version: NonEmpty = "main"
    image: NonEmpty = DEFAULT_IMAGE
    environment_type: NonEmpty = DEFAULT_ENVIRONMENT_TYPE
    compute_type: NonEmpty | None = None


class ImageSettings(_Section):
    repository: NonEmpty


class DeploySettings(_Section):
    instances: dict[str, str] = Field(min_length=1)
    container: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")]
    run_args: list[str] = Field(default_factory=list)
    approvers: list[SlackPrincipalId] = Field(min_length=1)
    required_approvals: int = Field(default=1, ge=1)
    allow_self_approval: bool = False
    approval_timeout_minutes: float = Field(default=60, gt=0)

    @field_validator("run_args")
    @classmethod
    def _run_args_are_safe(cls, value: list[str]) -> list[str]:
        # Checked at start-up too, not first when someone clicks Approve.
        try:
            check_run_args(value)
        except ShipbotError as exc:
            raise ValueError(exc.user_message) from exc
        return value

    @model_validator(mode="after")
    def _enough_approvers_named(self) -> DeploySettings:
        has_group = any(a.startswith("S") for a in self.approvers)
        if not has_group and self.required_approvals > len(set(self.approvers)):
            raise ValueError(
                f"required_approvals is {self.required_approvals} but only "
                f"{len(set(self.approvers))} approver(s) are listed"
            )
        return self


class EnvironmentSettings(_Section):
    channel: SlackChannelId
    build: BuildSettings
    image: ImageSettings
    deploy: DeploySettings | None = None


class EnvironmentsFile(_Section):
    region: NonEmpty | None = None
    environments: dict[str, EnvironmentSettings] = Field(min_length=1)

    @field_validator("environments")
    @classmethod
    def _names_are_usable(
        cls, value: dict[str, EnvironmentSettings]
    ) -> dict[str, EnvironmentSettings]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
                raise ValueError(
                    f"environment name {name!r} must be lower-case letters, digits, '-' or '_'"
                )
            if name in RESERVED_ENVIRONMENT_NAMES:
                raise ValueError(f"environment name {name!r} is reserved for a /build sub-command")
        return value

    def unknown_keys(self) -> list[str]:
        """Dotted paths of keys this version does not use (likely typos)."""
        return sorted(_unknown_keys(self, ""))


def _unknown_keys(model: BaseModel, prefix: str) -> Iterator[str]:
    for key in model.model_extra or {}:
        yield f"{prefix}{key}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _unknown_keys(value, f"{prefix}{name}.")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from _unknown_keys(item, f"{prefix}{name}.{key}.")


class Settings(BaseSettings):
    """Process settings; names match the documented environment variables."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr = Field(validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr = Field(validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN")
    )
    slack_api_url: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_API_URL"))
    config_path: Path = Field(
        default=Path("shipbot.yml"), validation_alias=AliasChoices("SHIPBOT_CONFIG")
    )
    store_url: str = Field(
        default="sqlite:///shipbot.sqlite3", validation_alias=AliasChoices("SHIPBOT_STORE")
    )
    port: int = Field(default=3000, ge=0, le=65535, validation_alias=AliasChoices("PORT"))
    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("SHIPBOT_HOST"))
    events_queue_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SHIPBOT_EVENTS_QUEUE_URL")
    )
    queue_wait_seconds: int = Field(
        default=10, ge=0, le=20, validation_alias=AliasChoices("SHIPBOT_QUEUE_WAIT_SECONDS")
    )
    # Reconciliation: EventBridge is best-effort, so known builds are also read now and then.
    poll_seconds: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("SHIPBOT_POLL_SECONDS")
    )
    # Bursts of phase events become at most one chat.update per build per this many seconds.
    status_update_seconds: float = Field(
        default=1.0, ge=0, validation_alias=AliasChoices("SHIPBOT_STATUS_UPDATE_SECONDS")
    )

    # How often running deployments are read from SSM and due requests expired.
    deploy_poll_seconds: float = Field(
        default=3.0, gt=0, validation_alias=AliasChoices("SHIPBOT_DEPLOY_POLL_SECONDS")
    )

    @property
    def reconcile_every(self) -> float:
        """Poll slowly when events arrive through a queue; it is the only source otherwise."""
        if self.poll_seconds is not None:
            return self.poll_seconds
        return 60.0 if self.events_queue_url else 15.0

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with 'xoxb-'")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with 'xapp-'")
        return value

    @field_validator("slack_signing_secret")
    @classmethod
    def _secret_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_shape(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("events_queue_url")
    @classmethod
    def _queue_url_shape(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://", value):
            raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/…)")
        return value

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        if not value.startswith("sqlite:///"):
            raise ValueError("must be a sqlite:///PATH URL (DynamoDB support comes later)")
        return value


_WHERE_TO_GET = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-…) under OAuth & Permissions "
    "at https://api.slack.com/apps",
    "SLACK_SIGNING_SECRET": "the Signing Secret under Basic Information at https://api.slack.com/apps",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write under Basic "
    "Information, only for Socket Mode",
}


def _env_var_of(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return field.upper()


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from `environ`, or raise ConfigError naming each bad variable."""
    values = {k: v for k, v in environ.items() if k.isupper()}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = field if field.isupper() else _env_var_of(field)
            if error["type"] == "missing":
                where = _WHERE_TO_GET.get(name)
                hint = f" — set it to {where}" if where else ""
                problems.append(f"{name} is not set{hint}")
            else:
                problems.append(f"{name}: {_message(error)}")
        raise ConfigError(problems) from exc


def _message(error: Mapping[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def parse_environments(text: str, source: str) -> EnvironmentsFile:
    """Parse the YAML environments file; errors name the file and the dotted key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML ({exc})"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: must be a mapping with an 'environments' key"])
    try:
        return EnvironmentsFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            if error["type"] == "missing":
                problems.append(f"{source}: {key} is required")
            else:
                problems.append(f"{source}: {key}: {_message(error)}")
        raise ConfigError(problems) from exc


def load_environments(path: Path) -> EnvironmentsFile:
    """Read and validate the environments file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            [
                f"{path}: environments file not found — copy shipbot.example.yml to {path} "
                "or point SHIPBOT_CONFIG at yours"
            ]
        ) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"]) from exc
    return parse_environments(text, str(path))
