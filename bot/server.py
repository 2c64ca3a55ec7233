"""The HTTP server (Slack requests and health check) and, when configured, Socket Mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import create_app
from bot.services import Services
from handlers.build_status import BuildTracker
from handlers.deployments import Deployments
from handlers.events import BuildPoller, EventConsumer

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
_RESTART_SECONDS = 5

_APP_KEY = web.AppKey("bolt_app", AsyncApp)
_SERVICES_KEY = web.AppKey("services", Services)


async def _slack_events(request: web.Request) -> web.Response:
    # slack-sdk's verifier raises (HTTP 500) on an empty or non-numeric timestamp header;
    # such a request is simply not signed by Slack.
    if not request.headers.get("X-Slack-Request-Timestamp", "").isdigit():
        return web.json_response({"error": "invalid request"}, status=401)
    app = request.app[_APP_KEY]
    bolt_response = await app.async_dispatch(await to_bolt_request(request))
    return await to_aiohttp_response(bolt_response)


async def _healthz(request: web.Request) -> web.Response:
    services = request.app[_SERVICES_KEY]
    try:
        await services.store.ping()
    except Exception as exc:  # noqa: BLE001 - any store failure means "not healthy"
        return web.json_response({"status": "unhealthy", "store": str(exc)}, status=503)
    return web.json_response(
        {
            "status": "ok",
            "mode": "socket" if services.settings.slack_app_token else "http",
            "environments": sorted(services.environments.environments),
        }
    )


def create_web_app(app: AsyncApp, services: Services) -> web.Application:
    web_app = web.Application()
    web_app[_APP_KEY] = app
    web_app[_SERVICES_KEY] = services
    web_app.router.add_post(SLACK_EVENTS_PATH, _slack_events)
    web_app.router.add_get("/healthz", _healthz)
    return web_app


@dataclass
class RunningBot:
    """A started bot: where it listens, and its parts for tests to reach."""

    app: AsyncApp
    services: Services
    port: int
    socket_mode: AsyncSocketModeHandler | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_bot(services: Services) -> AsyncIterator[RunningBot]:
    """Start listening (and connect Socket Mode if an app token is set); stop on exit."""
    deployments = Deployments(services)
    tracker = BuildTracker(services, on_success=deployments.on_build_succeeded)
    app = create_app(services, tracker, deployments)
    runner = web.AppRunner(create_web_app(app, services), access_log=None)
    await runner.setup()
    settings = services.settings
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = _bound_port(runner, settings.port)
    socket_mode = None
    poller = BuildPoller(services, tracker)
    background = [
        asyncio.create_task(
            _forever("reconciliation", lambda: poller.run_forever(settings.reconcile_every))
        ),
        asyncio.create_task(
            _forever("deploys", lambda: deployments.run_forever(settings.deploy_poll_seconds))
        ),
    ]
    if services.queue is not None:
        consumer = EventConsumer(services, services.queue, tracker)
        background.append(asyncio.create_task(_forever("events", consumer.run_forever)))
    try:
        if settings.slack_app_token is not None:
            socket_mode = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
            await socket_mode.connect_async()  # type: ignore[no-untyped-call]
            log.info("connected to Slack in Socket Mode")
        log.info(
            "listening on %s:%d (POST %s, GET /healthz)", settings.host, port, SLACK_EVENTS_PATH
        )
        yield RunningBot(app=app, services=services, port=port, socket_mode=socket_mode)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await tracker.aclose()
        if socket_mode is not None:
            await socket_mode.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()
        await services.close()


async def _forever(name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Keep a background loop alive: a crash is logged with its traceback and it restarts."""
    while True:
        try:
            await loop()
        except Exception:
            log.exception("background loop %s crashed; restarting in %ss", name, _RESTART_SECONDS)
        await asyncio.sleep(_RESTART_SECONDS)


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


async def serve_forever(services: Services, stop: asyncio.Event) -> None:
    async with running_bot(services):
        await stop.wait()
