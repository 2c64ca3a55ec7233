"""What `/deploy` means: request a deploy of an existing image, or show the history."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.config import EnvironmentsFile
from bot.errors import UnknownEnvironmentError, UsageError

USAGE = (
    "Usage: `/deploy <environment> <tag or sha256:digest>` to deploy (redeploy, roll back) an "
    "image already in ECR, `/deploy history <environment>` for the last deploys."
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# ECR's own tag rule: letters, digits, `_ . -`, up to 128, not starting with `.` or `-`.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class DeployHelp(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["help"] = "help"


class DeployHistory(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["history"] = "history"
    environment: str


class DeployImage(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["deploy"] = "deploy"
    environment: str
    tag: str | None = None
    digest: str | None = None


DeployCommand = DeployHelp | DeployHistory | DeployImage


def parse_deploy_command(text: str, environments: EnvironmentsFile) -> DeployCommand:
    words = text.split()
    if not words or words[0].lower() == "help":
        return DeployHelp()
    if words[0].lower() == "history":
        if len(words) != 2:
            raise UsageError(USAGE)
        _known_with_deploy(words[1], environments)
        return DeployHistory(environment=words[1])
    if len(words) != 2:
        raise UsageError(USAGE)
    environment, image = words
    _known_with_deploy(environment, environments)
    if _DIGEST.match(image):
        return DeployImage(environment=environment, digest=image)
    if _TAG.match(image):
        return DeployImage(environment=environment, tag=image)
    raise UsageError(f"`{image[:80]}` is neither an image tag nor a `sha256:` digest. {USAGE}")


def _known_with_deploy(name: str, environments: EnvironmentsFile) -> None:
    if name not in environments.environments:
        raise UnknownEnvironmentError(name, sorted(environments.environments))
    if environments.environments[name].deploy is None:
        raise UsageError(f"`{name}` has no `deploy` section in the environments file.")
