"""The SSM stand-in, spoken to by a real boto3 client: targeting, outcomes, statuses, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from integrations.aws import make_client
from standins.moto_server import MotoServer
from standins.ssm import FakeSsm
from tests.conftest import REGION

SCRIPT = ["set -eu", "docker pull 'registry.example.com/frontend@sha256:0123'"]


@pytest.fixture
async def fake_ssm(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSsm]:
    ssm = FakeSsm(region=REGION)
    ssm.register_instance("i-0dev1", {"Environment": "dev", "Role": "web", "Name": "dev-web-1"})
    ssm.register_instance("i-0dev2", {"Environment": "dev", "Role": "web"})
    ssm.register_instance("i-0devworker", {"Environment": "dev", "Role": "worker"})
    ssm.register_instance("i-0prod1", {"Environment": "prod", "Role": "web"})
    await ssm.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", ssm.url)
    yield ssm
    await ssm.stop()


@pytest.fixture
def client(fake_ssm: FakeSsm) -> Any:
    return make_client("ssm", REGION)


async def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """boto3 blocks: never call it on the loop thread that also serves the stand-in."""
    return await asyncio.to_thread(getattr(client, operation), **kwargs)


async def send(client: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("Targets", [{"Key": "tag:Environment", "Values": ["dev"]}])
    response = await call(
        client,
        "send_command",
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": SCRIPT},
        **kwargs,
    )
    command: dict[str, Any] = response["Command"]
    return command


async def invocation(client: Any, command_id: str, instance_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await call(
        client, "get_command_invocation", CommandId=command_id, InstanceId=instance_id
    )
    return result


async def test_tag_targets_match_every_key_with_any_of_its_values(
    client: Any, fake_ssm: FakeSsm
) -> None:
    command = await send(
        client,
        Targets=[
            {"Key": "tag:Environment", "Values": ["dev", "staging"]},
            {"Key": "tag:Role", "Values": ["web"]},
        ],
        Comment="shipbot deploy frontend",
        TimeoutSeconds=600,
        CloudWatchOutputConfig={"CloudWatchOutputEnabled": False},
    )

    assert command["Status"] == "Pending"
    assert command["TargetCount"] == 2
    assert command["DocumentName"] == "AWS-RunShellScript"
    assert command["Parameters"] == {"commands": SCRIPT}
    assert command["Comment"] == "shipbot deploy frontend"
    assert command["RequestedDateTime"].tzinfo is not None
    listed = await call(client, "list_command_invocations", CommandId=command["CommandId"])
    assert {i["InstanceId"] for i in listed["CommandInvocations"]} == {"i-0dev1", "i-0dev2"}
    assert {i["InstanceName"] for i in listed["CommandInvocations"]} == {"dev-web-1", ""}
    [sent] = fake_ssm.requests_for("SendCommand")
    assert sent["Parameters"] == {"commands": SCRIPT}
    assert fake_ssm.commands[command["CommandId"]]["Parameters"]["commands"] == SCRIPT
    assert fake_ssm.sent_scripts() == [SCRIPT]
    assert len(fake_ssm.sent_at) == 1


async def test_instance_ids_target_exactly_those_instances(client: Any) -> None:
    command = await send(client, Targets=[], InstanceIds=["i-0prod1", "i-0dev2"])

    assert command["TargetCount"] == 2
    assert command["InstanceIds"] == ["i-0prod1", "i-0dev2"]
    done = await invocation(client, command["CommandId"], "i-0prod1")
    assert done["Status"] == "Pending"


async def test_no_matching_instance_is_still_a_command_that_succeeds(client: Any) -> None:
    command = await send(client, Targets=[{"Key": "tag:Environment", "Values": ["qa"]}])

    assert command["TargetCount"] == 0
    [listed] = (await call(client, "list_commands", CommandId=command["CommandId"]))["Commands"]
    assert listed["Status"] == "Success"
    assert listed["CompletedCount"] == 0


async def test_statuses_progress_to_a_scripted_failure_with_stderr(
    client: Any, fake_ssm: FakeSsm
) -> None:
    fake_ssm.script(
        "i-0dev1",
        status="Failed",
        stdout="shipbot: pulling\nshipbot: replacing container frontend\n",
        stderr="exec /usr/local/bin/docker-entrypoint.sh: exec format error\n",
        response_code=1,
        polls_before_done=3,
    )
    command = await send(client)
    command_id = command["CommandId"]

    seen = [await invocation(client, command_id, "i-0dev1") for _ in range(4)]

    assert [s["Status"] for s in seen] == ["Pending", "InProgress", "InProgress", "Failed"]
    assert [s["ResponseCode"] for s in seen] == [-1, -1, -1, 1]
    assert seen[0]["ExecutionStartDateTime"] == ""
    assert seen[1]["ExecutionStartDateTime"].endswith("Z")
    assert seen[2]["ExecutionEndDateTime"] == ""
    assert seen[3]["ExecutionEndDateTime"] >= seen[3]["ExecutionStartDateTime"]
    assert seen[2]["StandardErrorContent"] == ""
    failed = seen[3]
    assert failed["StatusDetails"] == "Failed"
    assert failed["StandardErrorContent"].startswith("exec /usr/local/bin/docker-entrypoint.sh")
    assert failed["StandardOutputContent"].endswith("replacing container frontend\n")
    # Other instances were not scripted: they succeed after one unfinished read.
    other = [await invocation(client, command_id, "i-0dev2") for _ in range(2)]
    assert [o["Status"] for o in other] == ["Pending", "Success"]


async def test_outcomes_are_consumed_one_command_at_a_time(client: Any, fake_ssm: FakeSsm) -> None:
    fake_ssm.script("i-0dev1", status="Failed", response_code=2, polls_before_done=0)
    fake_ssm.script("i-0dev1", status="Success", stdout="second\n", polls_before_done=0)

    first = await send(client, Targets=[], InstanceIds=["i-0dev1"])
    second = await send(client, Targets=[], InstanceIds=["i-0dev1"])
    third = await send(client, Targets=[], InstanceIds=["i-0dev1"])

    assert (await invocation(client, first["CommandId"], "i-0dev1"))["ResponseCode"] == 2
    read = await invocation(client, second["CommandId"], "i-0dev1")
    assert (read["Status"], read["StandardOutputContent"]) == ("Success", "second\n")
    assert (await invocation(client, third["CommandId"], "i-0dev1"))["Status"] == "Pending"


async def test_output_is_cut_as_aws_cuts_it(client: Any, fake_ssm: FakeSsm) -> None:
    fake_ssm.script("i-0dev1", stdout="o" * 30_000, stderr="e" * 9_000, polls_before_done=0)
    command = await send(client, Targets=[], InstanceIds=["i-0dev1"])

    read = await invocation(client, command["CommandId"], "i-0dev1")

    assert len(read["StandardOutputContent"]) == 24_000
    assert len(read["StandardErrorContent"]) == 8_000


async def test_list_invocations_with_details_and_the_overall_status(
    client: Any, fake_ssm: FakeSsm
) -> None:
    fake_ssm.script("i-0dev2", status="Failed", stdout="out", stderr="boom", response_code=125)
    command = await send(client)
    command_id = command["CommandId"]

    async def overall() -> str:
        [listed] = (await call(client, "list_commands", CommandId=command_id))["Commands"]
        return str(listed["Status"])

    assert await overall() == "Pending"
    first = await call(client, "list_command_invocations", CommandId=command_id, Details=True)
    assert {i["Status"] for i in first["CommandInvocations"]} == {"Pending"}
    second = await call(client, "list_command_invocations", CommandId=command_id, Details=True)

    by_id = {i["InstanceId"]: i for i in second["CommandInvocations"]}
    assert by_id["i-0dev1"]["Status"] == "Success"
    [plugin] = by_id["i-0dev2"]["CommandPlugins"]
    assert plugin["Name"] == "aws:runShellScript"
    assert (plugin["Status"], plugin["ResponseCode"]) == ("Failed", 125)
    assert plugin["Output"] == "out\n----------ERROR-------\nboom"
    assert await overall() == "Failed"
    plain = await call(client, "list_command_invocations", CommandId=command_id)
    assert all(i["CommandPlugins"] == [] for i in plain["CommandInvocations"])


async def test_all_successful_invocations_make_a_successful_command(client: Any) -> None:
    command = await send(client)
    for _ in range(2):
        await call(client, "list_command_invocations", CommandId=command["CommandId"])

    [listed] = (await call(client, "list_commands", CommandId=command["CommandId"]))["Commands"]

    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Success", 3, 0)


async def test_an_instance_that_lost_its_connection_times_out_undelivered(
    client: Any, fake_ssm: FakeSsm
) -> None:
    fake_ssm.register_instance("i-0offline", {"Environment": "dev"}, ping_status="ConnectionLost")
    fake_ssm.script("i-0dev1", status="Undeliverable", polls_before_done=0)
    command = await send(client)
    command_id = command["CommandId"]

    reads = [await invocation(client, command_id, "i-0offline") for _ in range(2)]
    undeliverable = await invocation(client, command_id, "i-0dev1")

    assert [(r["Status"], r["StatusDetails"]) for r in reads] == [
        ("Pending", "Pending"),
        ("TimedOut", "DeliveryTimedOut"),
    ]
    assert reads[1]["ResponseCode"] == -1
    assert reads[1]["ExecutionStartDateTime"] == ""
    assert (undeliverable["Status"], undeliverable["StatusDetails"]) == ("Failed", "Undeliverable")


async def test_botocores_waiter_understands_the_statuses(client: Any, fake_ssm: FakeSsm) -> None:
    fake_ssm.script("i-0dev1", polls_before_done=2)
    fake_ssm.script("i-0dev2", status="Failed", response_code=1, polls_before_done=1)
    command = await send(client)
    waiter = client.get_waiter("command_executed")
    config = {"Delay": 0.01, "MaxAttempts": 5}

    await asyncio.to_thread(
        waiter.wait, CommandId=command["CommandId"], InstanceId="i-0dev1", WaiterConfig=config
    )
    with pytest.raises(WaiterError, match="Failed"):
        await asyncio.to_thread(
            waiter.wait, CommandId=command["CommandId"], InstanceId="i-0dev2", WaiterConfig=config
        )


async def test_cancel_command_cancels_unfinished_invocations(client: Any) -> None:
    command = await send(client, Targets=[], InstanceIds=["i-0dev1"])

    await call(client, "cancel_command", CommandId=command["CommandId"])

    read = await invocation(client, command["CommandId"], "i-0dev1")
    assert (read["Status"], read["ResponseCode"]) == ("Cancelled", -1)
    [listed] = (await call(client, "list_commands", CommandId=command["CommandId"]))["Commands"]
    assert listed["Status"] == "Cancelled"


async def test_describe_instance_information_with_either_filter_shape(
    client: Any, fake_ssm: FakeSsm
) -> None:
    fake_ssm.register_instance(
        "i-0lost", {"Environment": "dev"}, ping_status="ConnectionLost", platform="Ubuntu"
    )

    new_style = await call(
        client,
        "describe_instance_information",
        Filters=[{"Key": "InstanceIds", "Values": ["i-0dev1", "i-0lost", "i-0unmanaged"]}],
    )
    old_style = await call(
        client,
        "describe_instance_information",
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": ["i-0lost"]}],
    )
    everything = await call(client, "describe_instance_information")

    listed = {i["InstanceId"]: i for i in new_style["InstanceInformationList"]}
    assert set(listed) == {"i-0dev1", "i-0lost"}
    assert listed["i-0dev1"]["PingStatus"] == "Online"
    assert listed["i-0dev1"]["PlatformName"] == "Amazon Linux"
    assert listed["i-0lost"]["PingStatus"] == "ConnectionLost"
    assert listed["i-0lost"]["AgentVersion"]
    assert listed["i-0lost"]["LastPingDateTime"].tzinfo is not None
    assert [i["InstanceId"] for i in old_style["InstanceInformationList"]] == ["i-0lost"]
    assert len(everything["InstanceInformationList"]) == 5


async def test_pages_of_invocations_follow_next_token(client: Any, fake_ssm: FakeSsm) -> None:
    for n in range(60):
        fake_ssm.register_instance(f"i-0fleet{n:02d}", {"Environment": "fleet"})
    command = await send(client, Targets=[{"Key": "tag:Environment", "Values": ["fleet"]}])
    paginator = client.get_paginator("list_command_invocations")

    pages = await asyncio.to_thread(
        lambda: list(paginator.paginate(CommandId=command["CommandId"]))
    )

    assert [len(p["CommandInvocations"]) for p in pages] == [50, 10]


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        (
            {"Targets": [], "InstanceIds": [f"i-{n:017x}" for n in range(51)]},
            "ValidationException",
            "less than or equal to 50",
        ),
        ({"Targets": [], "InstanceIds": ["i-0unmanaged"]}, "InvalidInstanceId", "i-0unmanaged"),
        ({"DocumentName": "AWS-RunPowerShellScript"}, "InvalidDocument", "RunPowerShell"),
        ({"Parameters": {"commands": []}}, "InvalidParameters", "commands"),
    ],
)
async def test_send_command_refuses_what_aws_refuses(
    client: Any, fake_ssm: FakeSsm, kwargs: dict[str, Any], code: str, message: str
) -> None:
    arguments: dict[str, Any] = {
        "DocumentName": "AWS-RunShellScript",
        "Parameters": {"commands": SCRIPT},
        "Targets": [{"Key": "tag:Environment", "Values": ["dev"]}],
        **kwargs,
    }
    if not arguments["Targets"]:
        del arguments["Targets"]

    with pytest.raises(ClientError) as caught:
        await call(client, "send_command", **arguments)

    assert caught.value.response["Error"]["Code"] == code
    assert message in caught.value.response["Error"]["Message"]
    assert fake_ssm.commands == {}


async def test_unknown_invocation(client: Any) -> None:
    command = await send(client)

    for command_id, instance_id in [
        (command["CommandId"], "i-0prod1"),
        ("00000000-0000-0000-0000-000000000000", "i-0dev1"),
    ]:
        with pytest.raises(ClientError) as caught:
            await invocation(client, command_id, instance_id)
        assert caught.value.response["Error"]["Code"] == "InvocationDoesNotExist"


async def test_scripted_errors_and_botocores_retries(client: Any, fake_ssm: FakeSsm) -> None:
    fake_ssm.fail_next("SendCommand", "ThrottlingException", "Rate exceeded")

    command = await send(client)  # botocore's standard mode retries the throttled call

    assert command["TargetCount"] == 3
    assert len(fake_ssm.requests_for("SendCommand")) == 2
    assert len(fake_ssm.sent_at) == 2
    assert len(fake_ssm.commands) == 1
    fake_ssm.fail_next("DescribeInstanceInformation", "AccessDeniedException", "not allowed")
    with pytest.raises(ClientError) as caught:
        await call(client, "describe_instance_information")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_script_refuses_a_status_that_never_ends(fake_ssm: FakeSsm) -> None:
    with pytest.raises(ValueError, match="InProgress"):
        fake_ssm.script("i-0dev1", status="InProgress")
