"""What `/build` means: parsing its text, checking refs and deciding the StartBuild request."""

from __future__ import annotations

import hashlib
import re
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from bot.config import EnvironmentSettings, EnvironmentsFile
from bot.errors import InvalidRefError, UnknownEnvironmentError, UsageError
from bot.records import BuildRecord

MAX_REF_LENGTH = 200

# Characters git allows in ref names, minus the ones a shell or CodeBuild could mistake for syntax.
_REF_CHARS = re.compile(r"^[A-Za-z0-9._/+@=,-]+$")


class HelpCommand(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["help"] = "help"


class StartBuildCommand(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["start"] = "start"
    environment: str
    ref: str | None


class StatusCommand(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["status"] = "status"
    environment: str | None


class CancelCommand(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["cancel"] = "cancel"
    environment: str | None
    target: str  # a build id (`project:uuid`), its uuid or ARN, or a build number

    @property
    def build_number(self) -> int | None:
        return int(self.target) if self.target.isdigit() else None


BuildCommand = HelpCommand | StartBuildCommand | StatusCommand | CancelCommand

_BUILD_TARGET = re.compile(r"^(?:\d{1,9}|[A-Za-z0-9:/._-]{1,400})$")


class BuildRequest(BaseModel):
    """Everything CodeBuild's StartBuild is asked for, decided before any AWS call."""

    model_config = ConfigDict(frozen=True)

    project: str
    source_version: str
    image: str
    environment_type: str
    compute_type: str | None
    environment_variables: dict[str, str]
    idempotency_token: str


def parse_build_command(text: str, environments: EnvironmentsFile) -> BuildCommand:
    """Turn the text after `/build` into a command, or raise a UsageError saying what is wrong."""
    words = text.split()
    if not words or words[0].lower() == "help":
        return HelpCommand()
    name, *rest = words
    if name.lower() == "status":
        if len(rest) > 1:
            raise UsageError("Usage: `/build status [environment]`.")
        environment = rest[0] if rest else None
        if environment is not None:
            _known(environment, environments)
        return StatusCommand(environment=environment)
    if name.lower() == "cancel":
        return _parse_cancel(rest, environments)
    if name not in environments.environments:
        raise UnknownEnvironmentError(name, sorted(environments.environments))
    if len(rest) > 1:
        raise UsageError(
            "Too many arguments: a ref cannot contain spaces. Usage: `/build <environment> [ref]`."
        )
    ref = rest[0] if rest else None
    if ref is not None:
        check_ref(ref)
    return StartBuildCommand(environment=name, ref=ref)


def _known(name: str, environments: EnvironmentsFile) -> None:
    if name not in environments.environments:
        raise UnknownEnvironmentError(name, sorted(environments.environments))


def _parse_cancel(words: list[str], environments: EnvironmentsFile) -> CancelCommand:
    usage = "Usage: `/build cancel <build id or number>` or `/build cancel <environment> <number>`."
    if len(words) == 2:
        _known(words[0], environments)
        environment, target = words
    elif len(words) == 1:
        environment, target = None, words[0]
    else:
        raise UsageError(usage)
    if not _BUILD_TARGET.match(target):
        raise UsageError(f"`{target[:60]}` is not a build id or number. {usage}")
    return CancelCommand(environment=environment, target=target)


def check_ref(ref: str) -> None:
    """Reject refs that are not plausible git branch, tag or commit names."""
    if len(ref) > MAX_REF_LENGTH:
        raise InvalidRefError(ref, f"it is longer than {MAX_REF_LENGTH} characters")
    if any(ch.isspace() for ch in ref):
        raise InvalidRefError(ref, "it contains whitespace")
    if "$(" in ref or "`" in ref or ";" in ref:
        raise InvalidRefError(ref, "it contains shell syntax")
    if ".." in ref:
        raise InvalidRefError(ref, "git refs cannot contain `..`")
    if not _REF_CHARS.match(ref):
        raise InvalidRefError(
            ref, "only letters, digits and `. _ / + @ = , -` are allowed in a git ref"
        )
    if ref.startswith(("-", "/", ".")) or ref.endswith(("/", ".", ".lock")):
        raise InvalidRefError(ref, "it cannot start with `-`, `/` or `.`, or end with `/`, `.`")
    if "//" in ref or "/." in ref or "@{" in ref or ref == "@":
        raise InvalidRefError(ref, "it is not a valid git ref name")


def idempotency_token(key: str) -> str:
    """A stable token per Slack request, so retrying StartBuild never starts a second build."""
    return "shipbot-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def build_request(
    environment_name: str,
    environment: EnvironmentSettings,
    *,
    ref: str | None,
    requested_by: str,
    request_key: str,
) -> BuildRequest:
    """Decide the StartBuild request: always the configured (arm64 by default) image and type."""
    build = environment.build
    return BuildRequest(
        project=build.project,
        source_version=ref or build.source_version,
        image=build.image,
        environment_type=build.environment_type,
        compute_type=build.compute_type,
        environment_variables={
            "SHIPBOT_REQUESTED_BY": requested_by,
            "SHIPBOT_ENVIRONMENT": environment_name,
        },
        idempotency_token=idempotency_token(request_key),
    )


def build_console_url(build_arn: str, region: str) -> str:
    """Link to a build in the AWS console, from its ARN (or its `project:uuid` id)."""
    build_id = build_arn.rsplit("build/", 1)[-1]
    project = build_id.split(":", 1)[0]
    parts = build_arn.split(":")
    account = parts[4] if build_arn.startswith("arn:") and len(parts) > 5 else ""
    account_part = f"{account}/" if account else ""
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codebuild/{account_part}projects/"
        f"{quote(project, safe='')}/build/{quote(build_id, safe='')}/?region={region}"
    )


def matching_builds(candidates: list[BuildRecord], command: CancelCommand) -> list[BuildRecord]:
    """The known builds a cancel command can mean: by number, full id, uuid or ARN."""
    if command.environment is not None:
        candidates = [r for r in candidates if r.environment == command.environment]
    number = command.build_number
    if number is not None:
        return [r for r in candidates if r.build_number == number]
    target = command.target
    return [
        r
        for r in candidates
        if target in (r.build_id, r.build_arn) or r.build_id.split(":", 1)[-1] == target
    ]
