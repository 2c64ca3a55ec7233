"""Who may approve a deploy, and how a request moves from pending to a decision.

Pure functions over the stored request: the handler applies them inside a conditional write,
so concurrent clicks (or replicas) are decided against the latest state and the move to
"approved" happens exactly once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.records import Approval, DeployRequest

APPROVE_ACTION = "deploy_approve"
REJECT_ACTION = "deploy_reject"


class ClickOutcome(BaseModel):
    """What a click did: `request` is the new state to store, None when nothing changes."""

    model_config = ConfigDict(frozen=True)

    result: Literal["approved", "recorded", "rejected", "refused", "expired"]
    message: str  # for the person who clicked (ephemeral)
    request: DeployRequest | None = None


def is_expired(request: DeployRequest, now: datetime) -> bool:
    return now >= request.expires_at


def expire_if_due(request: DeployRequest, now: datetime) -> DeployRequest | None:
    """The expired request, or None if it is not pending or not yet due."""
    if request.status != "pending" or not is_expired(request, now):
        return None
    return request.model_copy(update={"status": "expired", "decided_at": now})


def supersede(request: DeployRequest, by_request_id: str, now: datetime) -> DeployRequest | None:
    """A newer request for the environment replaces a pending one."""
    if request.status != "pending":
        return None
    return request.model_copy(
        update={"status": "superseded", "superseded_by": by_request_id, "decided_at": now}
    )


def _refusal(
    request: DeployRequest, user: str, approvers: Collection[str], now: datetime
) -> ClickOutcome | None:
    """Why `user` may not decide on `request` now, or None when they may."""
    if request.status != "pending":
        return ClickOutcome(
            result="refused", message=f"This deploy request is already {request.status}."
        )
    if is_expired(request, now):
        return ClickOutcome(
            result="expired",
            message="This deploy request has expired; ask for a new one with `/deploy`.",
            request=expire_if_due(request, now),
        )
    if user not in approvers:
        return ClickOutcome(
            result="refused",
            message=f"You are not allowed to approve deploys to `{request.environment}`.",
        )
    return None


def approve(
    request: DeployRequest, user: str, approvers: Collection[str], now: datetime
) -> ClickOutcome:
    """Record `user`'s approval; the last one needed moves the request to approved."""
    refusal = _refusal(request, user, approvers, now)
    if refusal is not None:
        return refusal
    if user == request.requested_by and not request.allow_self_approval:
        return ClickOutcome(
            result="refused",
            message="You asked for this deploy, so someone else has to approve it.",
        )
    if any(a.user == user for a in request.approvals):
        return ClickOutcome(
            result="refused",
            message=f"You already approved; {missing(request)} more approval(s) needed.",
        )
    approvals = [*request.approvals, Approval(user=user, at=now)]
    if len(approvals) < request.required_approvals:
        updated = request.model_copy(update={"approvals": approvals})
        return ClickOutcome(
            result="recorded",
            message=f"Approval recorded; {missing(updated)} more needed.",
            request=updated,
        )
    updated = request.model_copy(
        update={"approvals": approvals, "status": "approved", "decided_by": user, "decided_at": now}
    )
    return ClickOutcome(result="approved", message="Approved: deploying now.", request=updated)


def reject(
    request: DeployRequest, user: str, approvers: Collection[str], now: datetime
) -> ClickOutcome:
    """An approver ends the request."""
    refusal = _refusal(request, user, approvers, now)
    if refusal is not None:
        return refusal
    updated = request.model_copy(
        update={"status": "rejected", "decided_by": user, "decided_at": now}
    )
    return ClickOutcome(result="rejected", message="Rejected.", request=updated)


def missing(request: DeployRequest) -> int:
    return max(0, request.required_approvals - len(request.approvals))
