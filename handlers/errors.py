"""Where errors end up: ours become a clear ephemeral message, others are logged with a ref."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.errors import ShipbotError
from bot.messages import error_message

log = logging.getLogger(__name__)


def describe(error: Exception) -> str:
    """What the user reads; unexpected errors get a reference to find them in the logs."""
    if isinstance(error, ShipbotError):
        log.info("request failed: %s", error.user_message)
        return error_message(error.user_message)
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error (ref %s)", reference, exc_info=error)
    return error_message(
        f"Something went wrong on my side (ref `{reference}`); the operator can find it "
        "in the bot's logs."
    )


async def on_error(
    error: Exception,
    body: dict[str, Any],
    ack: AsyncAck | None,
    respond: AsyncRespond | None,
) -> None:
    """Bolt's global error hook, for errors raised before a listener acknowledged."""
    text = describe(error)
    if ack is not None and getattr(ack, "response", None) is None:
        await ack(text=text)
    elif respond is not None and body.get("response_url"):
        await respond(text=text, response_type="ephemeral", replace_original=False)


def reporting_errors(
    listener: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """Wrap a lazy listener (work done after ack) so its errors reach the user too.

    Bolt only logs a lazy listener's exceptions; the listener must take `respond`.
    """

    @functools.wraps(listener)
    async def wrapper(**kwargs: Any) -> None:
        try:
            await listener(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure is described to the user
            respond: AsyncRespond = kwargs["respond"]
            await respond(text=describe(exc), response_type="ephemeral", replace_original=False)

    return wrapper


def register(app: AsyncApp) -> None:
    app.error(on_error)
