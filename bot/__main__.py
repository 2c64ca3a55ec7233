"""`python -m bot`: run the bot (the Procfile's web process), or `explain` a build log."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from slack_sdk.errors import SlackApiError

from bot.config import ConfigError
from bot.server import serve_forever
from bot.services import Services, load_services

log = logging.getLogger("shipbot")

USAGE = """usage: python -m bot [run]           start the bot (HTTP on $PORT, or Socket Mode)
       python -m bot explain [FILE|-] [--json]   explain why a build log failed"""

# Slack answers these for a token that will never work: no point in starting.
_FATAL_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked"}


async def _check_slack_token(services: Services) -> None:
    try:
        bot_user = await services.chat.bot_identity()
    except SlackApiError as exc:
        code = str(exc.response.get("error", ""))
        if code in _FATAL_AUTH_ERRORS:
            raise ConfigError(
                [
                    f"SLACK_BOT_TOKEN was refused by Slack ({code}): reinstall the app and copy "
                    "its Bot User OAuth Token"
                ]
            ) from exc
        log.warning("Slack auth.test failed (%s); starting anyway", code)
    except OSError as exc:
        log.warning("Slack is unreachable at start-up (%s); starting anyway", exc)
    else:
        log.info("authenticated to Slack as %s", bot_user)


async def _run(services: Services) -> None:
    await _check_slack_token(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve_forever(services, stop)


def run(environ: Mapping[str, str]) -> int:
    logging.basicConfig(
        level=environ.get("SHIPBOT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        services = load_services(environ)
        asyncio.run(_run(services))
    except ConfigError as exc:
        print("shipbot cannot start:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See README.md, 'Setting up', for where each value comes from.", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str]) -> int:
    command, *rest = argv or ["run"]
    if command == "run":
        return run(os.environ)
    if command == "explain":
        from bot.explain_cli import main as explain

        return explain(rest)
    if command in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
