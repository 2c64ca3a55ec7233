"""SSM Run Command: send the deploy script to tagged instances and read what each one did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from integrations.aws import aws_call

RUN_SHELL_SCRIPT = "AWS-RunShellScript"
MAX_INSTANCE_IDS = 50  # DescribeInstanceInformation / SendCommand take at most 50 ids


class Invocation(BaseModel):
    instance_id: str
    instance_name: str | None = None
    status: str
    status_details: str | None = None
    response_code: int | None = None
    stdout: str = ""
    stderr: str = ""


class Ssm:
    """The client must be made with `retries=False`: SendCommand has no idempotency token."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @aws_call("send the deploy command through SSM", idempotent=False)
    def send_command(
        self,
        *,
        tags: Mapping[str, str],
        commands: list[str],
        comment: str,
        timeout_seconds: int = 900,
    ) -> str:
        """Run `commands` on every instance whose tags all match; returns the command id."""
        response = self._client.send_command(
            DocumentName=RUN_SHELL_SCRIPT,
            Targets=[{"Key": f"tag:{key}", "Values": [value]} for key, value in tags.items()],
            Parameters={"commands": commands, "executionTimeout": [str(timeout_seconds)]},
            TimeoutSeconds=timeout_seconds,
            Comment=comment[:100],
        )
        return str(response["Command"]["CommandId"])

    @aws_call("read the deployment's progress from SSM")
    def invocations(self, command_id: str) -> list[Invocation]:
        """Each targeted instance's invocation, with its status and output."""
        found: list[Invocation] = []
        paginator_kwargs: dict[str, Any] = {"CommandId": command_id, "Details": True}
        while True:
            response = self._client.list_command_invocations(**paginator_kwargs)
            for item in response.get("CommandInvocations", []):
                found.append(
                    Invocation(
                        instance_id=item["InstanceId"],
                        instance_name=item.get("InstanceName") or None,
                        status=item.get("Status", "Pending"),
                        status_details=item.get("StatusDetails"),
                    )
                )
            token = response.get("NextToken")
            if not token:
                return found
            paginator_kwargs["NextToken"] = token

    @aws_call("read an instance's deploy output from SSM")
    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        response = self._client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        code = response.get("ResponseCode")
        return Invocation(
            instance_id=instance_id,
            status=response.get("Status", "Pending"),
            status_details=response.get("StatusDetails"),
            response_code=int(code) if code is not None else None,
            stdout=response.get("StandardOutputContent", ""),
            stderr=response.get("StandardErrorContent", ""),
        )

    @aws_call("check which instances SSM can reach")
    def ping_status(self, instance_ids: list[str]) -> dict[str, str]:
        """Instance id → SSM ping status (Online, ConnectionLost…); absent: not managed."""
        statuses: dict[str, str] = {}
        for start in range(0, len(instance_ids), MAX_INSTANCE_IDS):
            chunk = instance_ids[start : start + MAX_INSTANCE_IDS]
            kwargs: dict[str, Any] = {"Filters": [{"Key": "InstanceIds", "Values": chunk}]}
            while True:
                response = self._client.describe_instance_information(**kwargs)
                for item in response.get("InstanceInformationList", []):
                    statuses[item["InstanceId"]] = item.get("PingStatus", "Unknown")
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return statuses
