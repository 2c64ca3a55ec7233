"""The approval policy and state machine (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals import approve, expire_if_due, missing, reject, supersede
from bot.records import DeployRequest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
APPROVERS = {"U0APPROVER1", "U0APPROVER2", "U0APPROVER3", "U0ENGINEER1"}


def request(**changes: object) -> DeployRequest:
    base = DeployRequest(
        request_id="r1",
        environment="prod",
        origin="build",
        repository="frontend",
        registry_uri="123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/frontend",
        digest="sha256:" + "a" * 64,
        requested_by="U0ENGINEER1",
        required_approvals=2,
        approvers=["U0APPROVER1", "S0DEPLOYERS"],
        expires_at=NOW + timedelta(minutes=30),
        channel="C0PROD",
        created_at=NOW,
    )
    return base.model_copy(update=changes)


def test_two_distinct_approvers_approve() -> None:
    first = approve(request(), "U0APPROVER1", APPROVERS, NOW)
    assert first.result == "recorded"
    assert first.request is not None
    assert missing(first.request) == 1
    assert "1 more needed" in first.message

    second = approve(first.request, "U0APPROVER2", APPROVERS, NOW)
    assert second.result == "approved"
    assert second.request is not None
    assert second.request.status == "approved"
    assert [a.user for a in second.request.approvals] == ["U0APPROVER1", "U0APPROVER2"]
    assert second.request.decided_by == "U0APPROVER2"


def test_the_same_approver_twice_counts_once() -> None:
    first = approve(request(), "U0APPROVER1", APPROVERS, NOW)
    assert first.request is not None

    again = approve(first.request, "U0APPROVER1", APPROVERS, NOW)

    assert again.result == "refused"
    assert again.request is None
    assert "already approved" in again.message


def test_non_approver_is_refused() -> None:
    outcome = approve(request(), "U0STRANGER", APPROVERS, NOW)
    assert outcome.result == "refused"
    assert "not allowed" in outcome.message
    assert reject(request(), "U0STRANGER", APPROVERS, NOW).result == "refused"


def test_self_approval_refused_unless_allowed() -> None:
    refused = approve(request(), "U0ENGINEER1", APPROVERS, NOW)
    assert refused.result == "refused"
    assert "someone else" in refused.message

    allowed = approve(
        request(allow_self_approval=True, required_approvals=1), "U0ENGINEER1", APPROVERS, NOW
    )
    assert allowed.result == "approved"


def test_expired_request_refuses_clicks_and_expires() -> None:
    late = NOW + timedelta(minutes=30)

    outcome = approve(request(), "U0APPROVER1", APPROVERS, late)

    assert outcome.result == "expired"
    assert outcome.request is not None
    assert outcome.request.status == "expired"
    assert expire_if_due(request(), NOW) is None
    expired = expire_if_due(request(), late)
    assert expired is not None
    assert expired.status == "expired"


@pytest.mark.parametrize("status", ["approved", "rejected", "expired", "superseded", "deploying"])
def test_decided_requests_refuse_clicks(status: str) -> None:
    outcome = approve(request(status=status), "U0APPROVER1", APPROVERS, NOW)
    assert outcome.result == "refused"
    assert status in outcome.message


def test_reject_by_approver_ends_it() -> None:
    outcome = reject(request(), "U0APPROVER3", APPROVERS, NOW)

    assert outcome.result == "rejected"
    assert outcome.request is not None
    assert outcome.request.status == "rejected"
    assert outcome.request.decided_by == "U0APPROVER3"


def test_supersede_only_pending() -> None:
    superseded = supersede(request(), "r2", NOW)
    assert superseded is not None
    assert superseded.status == "superseded"
    assert superseded.superseded_by == "r2"
    assert supersede(request(status="deploying"), "r2", NOW) is None
