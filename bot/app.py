"""create_app: the Bolt app with every listener registered against injected services."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.services import Services
from handlers import build, deploy, errors
from handlers.build_status import BuildTracker
from handlers.deployments import Deployments


def create_app(services: Services, tracker: BuildTracker, deployments: Deployments) -> AsyncApp:
    app = AsyncApp(
        client=services.slack_client,
        signing_secret=services.settings.slack_signing_secret.get_secret_value(),
        logger=logging.getLogger("shipbot.bolt"),
        # Long-running server: Bolt answers Slack as soon as ack() is called.
        process_before_response=False,
    )
    errors.register(app)
    build.register(app, services, tracker)
    deploy.register(app, services, deployments)
    return app
