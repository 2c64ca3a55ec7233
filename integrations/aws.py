"""What every AWS integration shares: client creation, error mapping and the retry policy."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bot.errors import (
    AwsAccessDeniedError,
    AwsError,
    AwsInvalidRequestError,
    AwsNotFoundError,
    AwsThrottledError,
    AwsUnavailableError,
)

P = ParamSpec("P")
T = TypeVar("T")

# botocore's standard mode already retries throttling and 5xx with backoff; tenacity adds a
# slower outer layer for longer throttling bursts. Only idempotent calls may use it.
BOTOCORE_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30
)

_THROTTLING = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
}
_ACCESS_DENIED = {
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "AuthFailure",
}
_NOT_FOUND_SUFFIXES = ("NotFoundException", "NotFound", ".NotFound")
_INVALID = {"InvalidInputException", "ValidationException", "InvalidParameterException"}


# For calls that change state without an idempotency token (SSM SendCommand): one attempt, so a
# timed-out request is never sent twice.
SINGLE_ATTEMPT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30
)


def make_client(
    service: str, region: str | None, *, retries: bool = True, session: Any | None = None
) -> Any:
    """A boto3 client; endpoints come from AWS_ENDPOINT_URL[_<SERVICE>] as boto3 reads them.

    Pass one `session` for all clients: it loads the service models once.
    """
    session = session or boto3.session.Session(region_name=region)
    return session.client(
        service,
        region_name=region,
        config=BOTOCORE_CONFIG if retries else SINGLE_ATTEMPT_CONFIG,
    )


def map_client_error(exc: Exception, what: str) -> AwsError:
    """Turn a botocore error into one of ours whose message tells the user what happened."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        detail = f" ({message})" if message else ""
        if code in _THROTTLING:
            return AwsThrottledError(f"AWS is throttling requests to {what}; try again shortly.")
        if code in _ACCESS_DENIED:
            return AwsAccessDeniedError(
                f"The bot's AWS role is not allowed to {what}{detail}. "
                "Ask the operator to grant the permission."
            )
        if code.endswith(_NOT_FOUND_SUFFIXES):
            return AwsNotFoundError(f"Could not {what}: it does not exist in AWS{detail}.")
        if code in _INVALID:
            return AwsInvalidRequestError(f"AWS rejected the request to {what}{detail}.")
        return AwsError(f"AWS failed to {what}: {code or 'error'}{detail}.")
    if isinstance(exc, EndpointConnectionError):
        return AwsUnavailableError(f"Could not reach AWS to {what}; try again shortly.")
    if isinstance(exc, BotoCoreError):
        return AwsError(f"Could not {what}: {exc}.")
    raise TypeError(f"not an AWS error: {type(exc).__name__}")


def aws_call(
    what: str, *, idempotent: bool = True
) -> Callable[[Callable[P, T]], Callable[P, Awaitable[T]]]:
    """Run a blocking boto3 call in a thread, retry throttling, and map errors to ours.

    `idempotent=False` (a state change AWS cannot de-duplicate) is never retried.
    """

    def decorate(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await asyncio.to_thread(func, *args, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise map_client_error(exc, what) from exc

        if not idempotent:
            return wrapper
        retrying: Callable[P, Awaitable[T]] = retry(
            retry=retry_if_exception_type((AwsThrottledError, AwsUnavailableError)),
            wait=wait_random_exponential(multiplier=0.5, max=8),
            stop=stop_after_attempt(3),
            reraise=True,
        )(wrapper)
        return retrying

    return decorate
