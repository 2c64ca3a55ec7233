"""The shell script SSM's AWS-RunShellScript runs on each instance to deploy one image digest."""

from __future__ import annotations

import re
import shlex

from pydantic import BaseModel, ConfigDict, model_validator

from bot.errors import ShipbotError

# Seconds between `docker run` and the check that the container is still up: long enough for a
# wrong-architecture image ("exec format error") or a crashing entrypoint to have died.
SETTLE_SECONDS = 5
MAX_RUN_ARGS = 64
MAX_RUN_ARG_CHARS = 1000
# SSM documents and their parameters are capped at tens of KB; stay far below that.
MAX_SCRIPT_CHARS = 16_000

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_REGISTRY = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::[0-9]{{1,5}})?")
_ECR_REGISTRY = re.compile(r"[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
# ECR's own repository-name pattern.
_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]")
_CONTAINER = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
_LONG_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")

# `docker run` flags that take no value; every other long flag takes one. Knowing this is what
# lets us tell a flag's value from a stray word that docker would read as the image.
_BOOLEAN_FLAGS = frozenset(
    {
        "--detach",
        "--disable-content-trust",
        "--help",
        "--init",
        "--interactive",
        "--no-healthcheck",
        "--oom-kill-disable",
        "--privileged",
        "--publish-all",
        "--quiet",
        "--read-only",
        "--rm",
        "--sig-proxy",
        "--tty",
        "--use-api-socket",
    }
)
_SHORT_BOOLEAN = {"d": "--detach", "i": "--interactive", "t": "--tty", "P": "--publish-all"}
_SHORT_VALUED = {
    "a": "--attach",
    "c": "--cpu-shares",
    "e": "--env",
    "h": "--hostname",
    "l": "--label",
    "m": "--memory",
    "p": "--publish",
    "u": "--user",
    "v": "--volume",
    "w": "--workdir",
}
_SHORT_LETTERS = frozenset(_SHORT_BOOLEAN) | frozenset(_SHORT_VALUED)

# The container's name, restart policy and detached lifecycle are ours: the script relies on
# them to replace the old container. `--privileged`, devices and host namespaces would hand the
# container the instance. Ports, networks (host included), env files, mounts, `--entrypoint`
# and resource limits stay the environment file's business.
_FORBIDDEN_FLAGS = {
    "--name": "the container name comes from the environment's `container` setting",
    "--restart": "the restart policy is always `unless-stopped`",
    "--detach": "the container is always started detached",
    "--rm": "a deployed container must survive restarts",
    "--privileged": "privileged containers are not deployed by the bot",
    "--device": "host devices are not passed to deployed containers",
}
_HOST_NAMESPACE_FLAGS = frozenset({"--pid", "--ipc", "--uts", "--userns", "--cgroupns"})
_DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "CAP_SYS_ADMIN"})


class InvalidDeployValueError(ShipbotError):
    """A deploy setting would be unsafe or meaningless to put in the instance's shell script."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"Cannot deploy: `{field}` {reason}.")
        self.field = field


class DeployTarget(BaseModel):
    """One exact image and how to run it; checked on creation and again before use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry: str
    repository: str
    digest: str
    region: str
    container: str
    run_args: list[str]

    @model_validator(mode="after")
    def _check(self) -> DeployTarget:
        # InvalidDeployValueError is not a ValueError, so pydantic lets it through unchanged.
        validate_target(self)
        return self

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def validate_target(target: DeployTarget) -> None:
    """Raise InvalidDeployValueError naming the first field that is not safe to deploy."""
    if len(target.registry) > 253 or not _REGISTRY.fullmatch(target.registry):
        raise InvalidDeployValueError("registry", "must be a lowercase host name, maybe with :port")
    if "." not in target.registry and ":" not in target.registry:
        # docker would read a dotless first component as a Docker Hub namespace.
        raise InvalidDeployValueError("registry", "must contain a dot or a port")
    if not _REGION.fullmatch(target.region):
        raise InvalidDeployValueError("region", "must be an AWS region such as `ap-northeast-2`")
    ecr = _ECR_REGISTRY.fullmatch(target.registry)
    if ecr is not None and ecr.group(1) != target.region:
        raise InvalidDeployValueError(
            "registry", f"is in `{ecr.group(1)}` but the deploy region is `{target.region}`"
        )
    if len(target.repository) > 256 or not _REPOSITORY.fullmatch(target.repository):
        raise InvalidDeployValueError("repository", "must be an ECR repository name")
    if not _DIGEST.fullmatch(target.digest):
        raise InvalidDeployValueError("digest", "must be `sha256:` and 64 lowercase hex digits")
    if not _CONTAINER.fullmatch(target.container):
        raise InvalidDeployValueError(
            "container", "must be letters, digits, `_`, `.` or `-` (at most 128)"
        )
    check_run_args(target.run_args)


def check_run_args(args: list[str]) -> None:
    if len(args) > MAX_RUN_ARGS:
        raise InvalidDeployValueError("run_args", f"has more than {MAX_RUN_ARGS} arguments")
    for arg in args:
        if len(arg) > MAX_RUN_ARG_CHARS:
            raise InvalidDeployValueError(
                "run_args", f"has an argument longer than {MAX_RUN_ARG_CHARS} characters"
            )
        if any(c in arg for c in "\0\n\r"):
            raise InvalidDeployValueError("run_args", "has an argument with a line break or NUL")
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        name, value, takes_value = _parse_flag(arg)
        if takes_value and value is None:
            if index == len(args):
                raise InvalidDeployValueError("run_args", f"ends with `{name}` but no value")
            value = args[index]
            index += 1
        _check_flag(name, value)


def _parse_flag(arg: str) -> tuple[str, str | None, bool]:
    """(long flag name, inline value, whether it takes a value) for one option word."""
    if arg.startswith("--"):
        name, sep, inline = arg.partition("=")
        if not _LONG_FLAG.fullmatch(name):
            raise InvalidDeployValueError("run_args", f"has `{_shown(arg)}`, not a docker flag")
        return name, inline if sep else None, name not in _BOOLEAN_FLAGS
    if not (len(arg) > 1 and arg[0] == "-" and arg[1] in _SHORT_LETTERS):
        # A bare word would become the image, and ours its command.
        raise InvalidDeployValueError(
            "run_args", f"has `{_shown(arg)}`, which is not a flag or a flag's value"
        )
    # Short flags cluster (`-it`); the first one that takes a value takes the rest (`-p80:80`).
    for position, letter in enumerate(arg[1:], start=1):
        if letter in _SHORT_BOOLEAN:
            _check_flag(_SHORT_BOOLEAN[letter], None)
            continue
        if letter in _SHORT_VALUED:
            rest = arg[position + 1 :].removeprefix("=")
            return _SHORT_VALUED[letter], rest or None, True
        raise InvalidDeployValueError("run_args", f"has `-{_shown(letter)}`, an unknown short flag")
    return _SHORT_BOOLEAN[arg[-1]], None, False


def _check_flag(name: str, value: str | None) -> None:
    reason = _FORBIDDEN_FLAGS.get(name)
    if reason is not None:
        raise InvalidDeployValueError("run_args", f"may not use `{name}`: {reason}")
    if name in _HOST_NAMESPACE_FLAGS and value is not None and value.startswith("host"):
        raise InvalidDeployValueError("run_args", f"may not share the host's namespace (`{name}`)")
    if name == "--cap-add" and value is not None:
        for capability in value.upper().split(","):
            if capability.strip() in _DANGEROUS_CAPABILITIES:
                raise InvalidDeployValueError("run_args", f"may not add the `{value}` capability")
    if name == "--security-opt" and value is not None and "unconfined" in value:
        raise InvalidDeployValueError("run_args", "may not turn off seccomp or AppArmor")


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "…"


def deploy_commands(target: DeployTarget) -> list[str]:
    """AWS-RunShellScript `commands`: log in, pull, replace the container, check it stays up.

    POSIX sh (SSM runs the lines with `sh`), so `set -eu` but no pipefail. Every value is
    shell-quoted even though it was validated: the validation is the policy, quoting the safety.
    """
    validate_target(target)  # again: model_construct() and model_copy() skip validators
    q = shlex.quote
    name, image, registry = q(target.container), q(target.image), q(target.registry)
    run_args = " ".join(q(arg) for arg in target.run_args)
    run_line = f"docker run -d --name {name} --restart unless-stopped"
    if run_args:
        run_line += f" {run_args}"
    run_line += f" {image}"
    commands = [
        "set -eu",
        _say(f"logging in to {target.registry}"),
        # The assignment's status is the command substitution's, so `set -e` sees a failed
        # get-login-password; a pipe straight into docker login would hide it without pipefail.
        f'password="$(aws ecr get-login-password --region {q(target.region)})"',
        f"printf '%s\\n' \"$password\" | docker login --username AWS --password-stdin {registry}",
        "unset password",
        _say(f"pulling {target.image}"),
        f"docker pull --quiet {image}",
        _say(f"replacing container {target.container}"),
        f"if docker container inspect {name} >/dev/null 2>&1; then docker rm -f {name}; fi",
        run_line,
        f"sleep {SETTLE_SECONDS}",
        # A crash-looping container under --restart can read Running=true between attempts,
        # so require the running state and no restarts yet.
        f"state=\"$(docker inspect -f '{{{{.State.Status}}}} {{{{.RestartCount}}}}' {name}"
        ' 2>&1 || true)"',
        'if [ "$state" != "running 0" ]; then'
        f" printf 'shipbot: %s is not running (%s); its last log lines:\\n' {name} \"$state\" >&2;"
        f" docker logs --tail 50 {name} 1>&2 || true; exit 1; fi",
        _say(f"{target.container} is running {target.image}"),
    ]
    if sum(len(c) + 1 for c in commands) > MAX_SCRIPT_CHARS:
        raise InvalidDeployValueError("run_args", "make the deploy script too long for SSM")
    return commands


def _say(message: str) -> str:
    return f"printf '%s\\n' {shlex.quote('shipbot: ' + message)}"
