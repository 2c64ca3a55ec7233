"""Our own errors: each carries the one sentence a Slack user should read."""

from __future__ import annotations


class ShipbotError(Exception):
    """Base of every error the bot explains to the user instead of crashing."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UsageError(ShipbotError):
    """The command's text could not be understood."""


class UnknownEnvironmentError(UsageError):
    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(f"`{n}`" for n in known) or "none are configured"
        super().__init__(f"There is no environment called `{name}`. Known environments: {listed}.")
        self.name = name


class InvalidRefError(UsageError):
    def __init__(self, ref: str, reason: str) -> None:
        shown = ref if len(ref) <= 60 else ref[:57] + "…"
        super().__init__(f"`{shown}` is not a usable git ref: {reason}.")


class AwsError(ShipbotError):
    """An AWS call failed; the message says which and why in plain words."""


class AwsAccessDeniedError(AwsError):
    pass


class AwsNotFoundError(AwsError):
    pass


class AwsThrottledError(AwsError):
    pass


class AwsInvalidRequestError(AwsError):
    pass


class AwsUnavailableError(AwsError):
    pass


class StoreConflictError(Exception):
    """A conditional write lost a race: someone else changed the record first."""
