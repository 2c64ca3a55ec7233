"""The deploy script SSM runs on each instance: exact commands, validation, quoting, and sh."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.deploy_script import DeployTarget, InvalidDeployValueError, deploy_commands
from bot.errors import ShipbotError

REGISTRY = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"{REGISTRY}/frontend@{DIGEST}"
GOOD: dict[str, Any] = {
    "registry": REGISTRY,
    "repository": "frontend",
    "digest": DIGEST,
    "region": "ap-northeast-2",
    "container": "frontend",
    "run_args": ["-p", "3000:3000", "--env-file", "/etc/frontend.env"],
}


def target(**changes: Any) -> DeployTarget:
    return DeployTarget(**{**GOOD, **changes})


def run_line(commands: list[str]) -> str:
    [line] = [c for c in commands if c.startswith("docker run ")]
    return line


def test_exact_commands_for_a_normal_target() -> None:
    assert deploy_commands(target()) == [
        "set -eu",
        f"printf '%s\\n' 'shipbot: logging in to {REGISTRY}'",
        'password="$(aws ecr get-login-password --region ap-northeast-2)"',
        f"printf '%s\\n' \"$password\" | docker login --username AWS --password-stdin {REGISTRY}",
        "unset password",
        f"printf '%s\\n' 'shipbot: pulling {IMAGE}'",
        f"docker pull --quiet {IMAGE}",
        "printf '%s\\n' 'shipbot: replacing container frontend'",
        "if docker container inspect frontend >/dev/null 2>&1; then docker rm -f frontend; fi",
        "docker run -d --name frontend --restart unless-stopped"
        f" -p 3000:3000 --env-file /etc/frontend.env {IMAGE}",
        "sleep 5",
        "state=\"$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' frontend"
        ' 2>&1 || true)"',
        'if [ "$state" != "running 0" ]; then'
        " printf 'shipbot: %s is not running (%s); its last log lines:\\n' frontend \"$state\" >&2;"
        " docker logs --tail 50 frontend 1>&2 || true; exit 1; fi",
        f"printf '%s\\n' 'shipbot: frontend is running {IMAGE}'",
    ]


def test_no_run_args_and_a_nested_repository() -> None:
    commands = deploy_commands(target(repository="team/web-app_1", run_args=[]))
    image = f"{REGISTRY}/team/web-app_1@{DIGEST}"
    assert run_line(commands) == f"docker run -d --name frontend --restart unless-stopped {image}"


def test_a_local_registry_with_a_port_is_allowed_for_tests() -> None:
    commands = deploy_commands(target(registry="localhost:5000"))
    assert f"docker pull --quiet localhost:5000/frontend@{DIGEST}" in commands


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("container", "a;rm -rf /"),
        ("container", "$(id)"),
        ("container", "`id`"),
        ("container", "front end"),
        ("container", "frontend\n"),
        ("container", "frontend\nreboot"),
        ("container", "-frontend"),
        ("container", ""),
        ("container", "a" * 129),
        ("digest", "latest"),
        ("digest", "sha256:XYZ"),
        ("digest", "sha256:" + "0123456789ABCDEF" * 4),
        ("digest", "sha256:" + "0" * 63),
        ("digest", DIGEST + "\n"),
        ("digest", "sha512:" + "0" * 64),
        ("digest", "frontend:latest"),
        ("repository", "Frontend"),
        ("repository", "frontend:latest"),
        ("repository", "/frontend"),
        ("repository", "frontend/"),
        ("repository", "front//end"),
        ("repository", "front end"),
        ("repository", "frontend;id"),
        ("repository", "a" * 257),
        ("registry", "Registry.example.com"),
        ("registry", "registry.example.com/path"),
        ("registry", "evil.com;id"),
        ("registry", "$(id).example.com"),
        ("registry", "frontend"),  # docker would read this as a Docker Hub namespace
        ("registry", "host.example.com:port"),
        ("registry", REGISTRY + "\n"),
        ("registry", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),  # not the target's region
        ("region", "ap-northeast"),
        ("region", "AP-NORTHEAST-2"),
        ("region", "ap-northeast-2; id"),
        ("region", "ap-northeast-2\n"),
        ("region", ""),
    ],
)
def test_hostile_or_malformed_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidDeployValueError) as caught:
        target(**{field: value})

    assert f"`{field}`" in caught.value.user_message
    assert caught.value.field == field
    assert isinstance(caught.value, ShipbotError)


@pytest.mark.parametrize(
    "run_args",
    [
        ["--name", "other"],
        ["--name=other"],
        ["--restart", "always"],
        ["--restart=no"],
        ["-d"],
        ["-itd"],
        ["--detach"],
        ["--rm"],
        ["--privileged"],
        ["--device", "/dev/sda"],
        ["--pid=host"],
        ["--pid", "host"],
        ["--ipc=host"],
        ["--userns", "host"],
        ["--cap-add", "SYS_ADMIN"],
        ["--cap-add=all"],
        ["--security-opt", "seccomp=unconfined"],
        ["-e", "A=1\nreboot"],
        ["-e", "A=1\rB"],
        ["-e", "A=\0"],
        ["; reboot"],
        ["$(curl x)"],
        ["other/image:latest"],  # a bare word would become the image
        ["-p", "3000:3000", "evil"],
        ["--"],
        ["-"],
        ["-x"],
        ["--Name", "x"],
        ["--env"],  # a flag that needs a value, at the end
        ["-e", "x" * 1001],
        ["--label", "a=b"] * 33,
    ],
)
def test_run_args_that_would_change_what_runs_are_refused(run_args: list[str]) -> None:
    with pytest.raises(InvalidDeployValueError) as caught:
        target(run_args=run_args)

    assert caught.value.field == "run_args"


@pytest.mark.parametrize(
    "run_args",
    [
        ["-e", "GREETING=; reboot"],
        ["-e", "A=$(curl x)"],
        ["-e", "A=`id`"],
        ["-e", "a'b"],
        ["-e", 'say "hi" \\ $HOME'],
        ["-e", "--name other"],  # a flag's value, not a flag
        ["--label=owner=$(id)"],
        ["-eA=1", "-p80:80", "-it"],
        ["--entrypoint", "/bin/sh"],
        ["--network", "host"],
        ["--init", "--read-only", "-v", "/srv/data:/data:ro", "--memory=512m"],
        ["--cap-add", "NET_BIND_SERVICE"],
        ["--pid", "container:sidecar"],
        ["--env", "x" * 1000],
    ],
)
def test_allowed_run_args_are_each_one_shell_word(run_args: list[str]) -> None:
    commands = deploy_commands(target(run_args=run_args))

    words = shlex.split(run_line(commands))
    assert words == [
        "docker",
        "run",
        "-d",
        "--name",
        "frontend",
        "--restart",
        "unless-stopped",
        *run_args,
        IMAGE,
    ]


def test_values_bypassing_the_model_validator_are_still_refused() -> None:
    sneaky = target().model_copy(update={"container": "x; reboot"})

    with pytest.raises(InvalidDeployValueError, match="container"):
        deploy_commands(sneaky)


def test_a_script_too_long_for_ssm_is_refused() -> None:
    with pytest.raises(InvalidDeployValueError, match="too long"):
        deploy_commands(target(run_args=["-e", "x" * 1000] * 16))


def test_the_script_is_valid_posix_sh(tmp_path: Path) -> None:
    hostile = ["-e", "A=$(id)", "-e", "B=`id`; reboot", "-e", "C=a'b\"c"]
    script = tmp_path / "deploy.sh"
    script.write_text("\n".join(deploy_commands(target(run_args=hostile))) + "\n")

    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert len(script.read_text()) < 4000


# -- running the script against stub `aws`, `docker` and `sleep` on PATH (no network) ----------

_STUB = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0") $1" in
  "aws ecr") [ "${AWS_FAILS:-}" = 1 ] && { echo "Unable to locate credentials" >&2; exit 253; }
             echo secret-password ;;
  "docker login") cat > "$STUB_STDIN"; echo "Login Succeeded" ;;
  "docker inspect") echo "$DOCKER_STATE" ;;
  "docker container") [ "${OLD_CONTAINER:-}" = 1 ] || exit 1 ;;
  "docker logs") echo "exec /usr/local/bin/docker-entrypoint.sh: exec format error" ;;
esac
exit 0
"""


def _run_with_stubs(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "docker", "sleep"):
        path = bin_dir / tool
        path.write_text(_STUB)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    log.touch()
    script = "\n".join(deploy_commands(target(run_args=["-e", "A=$(id)"]))) + "\n"
    result = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
        env={
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "STUB_LOG": str(log),
            "STUB_STDIN": str(tmp_path / "login-stdin"),
            **env,
        },
    )
    return result, log.read_text()


def test_a_successful_deploy_runs_the_steps_in_order(tmp_path: Path) -> None:
    result, calls = _run_with_stubs(tmp_path, DOCKER_STATE="running 0", OLD_CONTAINER="1")

    assert result.returncode == 0, result.stderr
    assert calls.splitlines() == [
        "aws ecr get-login-password --region ap-northeast-2",
        f"docker login --username AWS --password-stdin {REGISTRY}",
        f"docker pull --quiet {IMAGE}",
        "docker container inspect frontend",
        "docker rm -f frontend",
        f"docker run -d --name frontend --restart unless-stopped -e A=$(id) {IMAGE}",
        "sleep 5",
        "docker inspect -f {{.State.Status}} {{.RestartCount}} frontend",
    ]
    assert (tmp_path / "login-stdin").read_text() == "secret-password\n"
    assert "secret-password" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"shipbot: frontend is running {IMAGE}"


def test_no_old_container_is_not_an_error(tmp_path: Path) -> None:
    result, calls = _run_with_stubs(tmp_path, DOCKER_STATE="running 0")

    assert result.returncode == 0, result.stderr
    assert "docker rm" not in calls


@pytest.mark.parametrize("state", ["exited 0", "restarting 3", "running 2", ""])
def test_a_container_that_does_not_stay_up_fails_with_its_logs_on_stderr(
    tmp_path: Path, state: str
) -> None:
    result, calls = _run_with_stubs(tmp_path, DOCKER_STATE=state)

    assert result.returncode == 1
    assert "shipbot: frontend is not running" in result.stderr
    assert "exec format error" in result.stderr
    assert calls.splitlines()[-1] == "docker logs --tail 50 frontend"
    assert "is running" not in result.stdout


def test_a_failed_ecr_login_stops_before_anything_changes(tmp_path: Path) -> None:
    result, calls = _run_with_stubs(tmp_path, AWS_FAILS="1", DOCKER_STATE="running 0")

    assert result.returncode != 0
    assert "Unable to locate credentials" in result.stderr
    assert calls.splitlines() == ["aws ecr get-login-password --region ap-northeast-2"]
