"""Parsing real EventBridge CodeBuild events, and folding updates into a build's record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.events import BuildUpdate, EventParseError, build_id_from_arn, parse_event
from bot.records import BuildRecord
from bot.status import apply_update, record_from_update

EVENTS = Path(__file__).parent.parent / "fixtures" / "events"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BUILD_ID = "frontend-dev:5f1c2d3e-0a1b-4c5d-9e8f-7a6b5c4d3e2f"


def fixture(name: str) -> str:
    return (EVENTS / name).read_text()


def test_failed_state_change_gives_status_failed_phase_context_logs_and_env() -> None:
    update = parse_event(fixture("build_state_failed.json"))

    assert update.build_id == BUILD_ID
    assert update.project == "frontend-dev"
    assert update.status == "FAILED"
    assert update.is_final
    assert update.phase == "COMPLETED"
    assert update.build_number == 17
    assert update.initiator == "shipbot-role/shipbot"
    assert update.source_version == "feature/login"
    assert update.started_at == datetime(2026, 12, 1, 10, 12, 3, tzinfo=UTC)
    assert update.ended_at == datetime(2026, 12, 1, 10, 21, 48, tzinfo=UTC)
    assert update.failed_phase == "BUILD"
    assert update.failed_phase_context == (
        "COMMAND_EXECUTION_ERROR: Error while executing command: yarn build. "
        "Reason: exit status 137"
    )
    assert update.log_group == "/aws/codebuild/frontend-dev"
    assert update.log_stream == "5f1c2d3e-0a1b-4c5d-9e8f-7a6b5c4d3e2f"
    assert update.log_link is not None
    assert update.environment_variables["NPM_TOKEN"] == "npm-secret-value-1234"


def test_phase_change_gives_the_phase_being_entered() -> None:
    update = parse_event(fixture("build_phase_change.json"))

    assert update.status == "IN_PROGRESS"
    assert update.phase == "BUILD"
    assert update.failed_phase is None
    assert not update.is_final


def test_webhook_event_names_the_initiator_and_has_no_log_location_yet() -> None:
    update = parse_event(fixture("build_state_in_progress_webhook.json"))

    assert update.initiator == "GitHub-Hookshot/7d2b1f0"
    assert update.source_version == "pr/42"
    assert update.phase == "SUBMITTED"
    assert update.log_group is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}}),
        json.dumps({"source": "aws.codebuild", "detail-type": "CodeBuild Fleet State Change"}),
        json.dumps({"source": "aws.codebuild", "detail-type": "CodeBuild Build State Change"}),
    ],
)
def test_other_messages_are_refused(body: str) -> None:
    with pytest.raises(EventParseError):
        parse_event(body)


def test_build_id_from_arn() -> None:
    arn = "arn:aws:codebuild:ap-northeast-2:123456789012:build/frontend-dev:abc"
    assert build_id_from_arn(arn) == "frontend-dev:abc"
    assert build_id_from_arn("frontend-dev:abc") == "frontend-dev:abc"


def update(status: str = "IN_PROGRESS", phase: str | None = None, **extra: object) -> BuildUpdate:
    return BuildUpdate(
        build_id=BUILD_ID,
        build_arn=f"arn:aws:codebuild:ap-northeast-2:123456789012:build/{BUILD_ID}",
        project="frontend-dev",
        status=status,
        phase="COMPLETED" if status != "IN_PROGRESS" else phase,
        observed_at=NOW,
        **extra,  # type: ignore[arg-type]
    )


def new_record() -> BuildRecord:
    return record_from_update(
        update(phase="QUEUED"), environment="dev", channel="C0DEV", console_url="u", now=NOW
    )


def test_phases_move_forward_only() -> None:
    record = new_record()
    building = apply_update(record, update(phase="BUILD"), NOW)
    assert building is not None
    assert building.current_phase == "BUILD"
    assert building.revision == record.revision + 1

    assert apply_update(building, update(phase="INSTALL"), NOW) is None
    assert apply_update(building, update(phase="BUILD"), NOW) is None


def test_final_is_final_whatever_arrives_after() -> None:
    failed = apply_update(
        new_record(),
        update("FAILED", failed_phase="BUILD", failed_phase_context="exit status 1"),
        NOW + timedelta(minutes=5),
    )
    assert failed is not None
    assert failed.status == "FAILED"
    assert failed.current_phase == "COMPLETED"
    assert failed.ended_at == NOW

    assert apply_update(failed, update(phase="POST_BUILD"), NOW) is None
    assert apply_update(failed, update("FAILED"), NOW) is None
    assert apply_update(failed, update("SUCCEEDED"), NOW) is None


def test_missing_details_are_filled_in_by_later_updates() -> None:
    record = new_record()
    assert record.log_group is None

    filled = apply_update(
        record, update(phase="QUEUED", log_group="/g", log_stream="s", build_number=3), NOW
    )

    assert filled is not None
    assert (filled.log_group, filled.log_stream, filled.build_number) == ("/g", "s", 3)


def test_record_for_a_build_started_elsewhere() -> None:
    record = record_from_update(
        parse_event(fixture("build_state_in_progress_webhook.json")),
        environment="dev",
        channel="C0DEV",
        console_url="u",
        now=NOW,
    )

    assert record.requested_by is None
    assert record.initiator == "GitHub-Hookshot/7d2b1f0"
    assert record.status == "IN_PROGRESS"
    assert record.revision == 1


async def test_the_stand_ins_events_have_the_real_events_shape() -> None:
    from standins.codebuild import FakeCodeBuild

    codebuild = FakeCodeBuild()
    codebuild.add_project("frontend-dev")
    build = codebuild.start_external_build("frontend-dev")
    codebuild.advance(build["id"], "PRE_BUILD")
    codebuild.advance(build["id"], "BUILD")
    codebuild.set_logs(build["id"], "/aws/codebuild/frontend-dev", "s")
    phase_event = codebuild.phase_change_event(build["id"])
    codebuild.finish(build["id"], "FAILED", context=("COMMAND_EXECUTION_ERROR", "exit status 1"))
    state_event = codebuild.state_change_event(build["id"])

    real_state = json.loads(fixture("build_state_failed.json"))
    real_phase = json.loads(fixture("build_phase_change.json"))
    assert set(state_event) == set(real_state)
    assert set(state_event["detail"]) == set(real_state["detail"])
    assert set(state_event["detail"]["additional-information"]) == set(
        real_state["detail"]["additional-information"]
    )
    assert set(phase_event["detail"]) == set(real_phase["detail"])
    assert parse_event(json.dumps(state_event)).failed_phase == "BUILD"
    assert parse_event(json.dumps(phase_event)).phase == "BUILD"
