"""`python -m bot` as the Procfile runs it: settings errors, health check, a build, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from standins.codebuild import FakeCodeBuild
from standins.moto_server import MotoServer
from standins.slack_api import FakeSlack
from standins.slack_requests import SlackAppClient
from tests.conftest import REQUESTER, SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]


def base_environ() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


async def run_bot(environ: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_missing_settings_exit_non_zero_naming_each(tmp_path: Path) -> None:
    process = await run_bot({**base_environ(), "SHIPBOT_CONFIG": str(tmp_path / "none.yml")})
    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    text = stderr.decode()
    assert process.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in text
    assert "Bot User OAuth Token" in text
    assert "SLACK_SIGNING_SECRET is not set" in text
    assert "environments file not found" in text


async def test_invalid_environments_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "shipbot.yml"
    config.write_text(
        "environments:\n  dev:\n    channel: C0DEV\n    build: {source_version: dev}\n"
        "    image: {repository: frontend}\n"
    )
    environ = {
        **base_environ(),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "SHIPBOT_CONFIG": str(config),
    }
    process = await run_bot(environ)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 2
    assert "environments.dev.build.project is required" in stderr.decode()


async def test_refused_bot_token_stops_the_bot_with_a_clear_message(
    bot_environ: dict[str, str], fake_slack: FakeSlack, aws: MotoServer
) -> None:
    environ = {**base_environ(), **bot_environ, "SLACK_BOT_TOKEN": "xoxb-revoked"}
    environ.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    process = await run_bot(environ)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 2
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in stderr.decode()
    assert "xoxb-revoked" not in stderr.decode()


async def test_python_m_bot_serves_health_and_slash_commands_then_stops_on_sigterm(
    bot_environ: dict[str, str], fake_slack: FakeSlack, fake_codebuild: FakeCodeBuild
) -> None:
    port = free_port()
    environ = {**base_environ(), **bot_environ, "PORT": str(port)}
    environ.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    process = await run_bot(environ)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            health = await wait_for_health(session, f"{url}/healthz", process)
            assert health == {"status": "ok", "mode": "http", "environments": ["dev", "prod"]}

            slack_app = SlackAppClient(session, f"{url}/slack/events", SIGNING_SECRET)
            status, ack = await slack_app.command(
                "dev", user_id=REQUESTER, response_url=fake_slack.response_url()
            )
            assert status == 200
            assert "Starting a build" in ack["text"]
            post = await fake_slack.wait_for("chat.postMessage", timeout=10)
            assert post.params["channel"] == "C0DEVCHANNEL"
            assert len(fake_codebuild.requests_for("StartBuild")) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert fake_slack.bot_token not in stderr.decode()
    assert SIGNING_SECRET not in stderr.decode()


async def wait_for_health(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process
) -> dict[str, object]:
    for _ in range(200):
        if process.returncode is not None:
            raise AssertionError(f"bot exited with {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    body: dict[str, object] = await response.json()
                    return body
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the bot never became healthy")


async def test_python_m_bot_explain_reads_stdin_and_prints_json() -> None:
    log = (
        "[Container] 2026/12/01 10:13:12.000001 Running command docker run --rm app\n"
        "exec /usr/local/bin/docker-entrypoint.sh: exec format error\n"
        "[Container] 2026/12/01 10:13:13.000001 Command did not exit successfully "
        "docker run --rm app exit status 1\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "explain",
        "-",
        "--json",
        cwd=ROOT,
        env=base_environ(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(log.encode()), 30)

    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert set(result) == {"category", "title", "hint", "excerpt", "line_numbers"}
    assert result["category"] == "exec_format"
    assert "exec /usr/local/bin/docker-entrypoint.sh: exec format error" in result["excerpt"]
    assert 2 in result["line_numbers"]


async def test_python_m_bot_explain_finds_nothing_in_a_clean_log(tmp_path: Path) -> None:
    clean = tmp_path / "build.log"
    clean.write_text("yarn install v4\nDone in 3.2s\nfound 0 vulnerabilities\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "explain",
        str(clean),
        "--json",
        cwd=ROOT,
        env=base_environ(),
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0
    assert json.loads(stdout)["category"] == "unknown"
