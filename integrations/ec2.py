"""Amazon EC2: the instances a deployment targets, found by their tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.aws import aws_call

# Terminated and shutting-down instances can never run the image; the rest are reported so
# the caller can say "i-… is stopped" instead of silently deploying to fewer instances.
LIVE_STATES = ("pending", "running", "stopping", "stopped")


class Instance(BaseModel):
    model_config = ConfigDict(frozen=True)

    instance_id: str
    name: str | None
    architecture: str
    state: str
    instance_type: str | None
    private_ip: str | None

    @classmethod
    def from_aws(cls, item: Mapping[str, Any]) -> Instance:
        """From one DescribeInstances `Instances[]` entry."""
        return cls(
            instance_id=str(item["InstanceId"]),
            name=_tags(item).get("Name"),
            architecture=str(item.get("Architecture", "")),
            state=str(item.get("State", {}).get("Name", "")),
            instance_type=item.get("InstanceType"),
            private_ip=item.get("PrivateIpAddress"),
        )


class Ec2:
    """Async facade over a boto3 EC2 client (injected, so tests point it at moto)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @aws_call("find EC2 instances by tag")
    def find_instances(self, tags: Mapping[str, str]) -> list[Instance]:
        """Instances carrying every one of `tags`, in any state but terminated/shutting-down."""
        if not tags:
            # No filter would select every instance in the account: never a deploy target.
            raise ValueError("find_instances needs at least one tag")
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        filters.append({"Name": "instance-state-name", "Values": list(LIVE_STATES)})
        instances: list[Instance] = []
        for page in self._client.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                for item in reservation.get("Instances", []):
                    # EC2 reads * and ? in filter values as wildcards; tags must match exactly.
                    if all(_tags(item).get(k) == v for k, v in tags.items()):
                        instances.append(Instance.from_aws(item))
        return sorted(instances, key=lambda i: (i.name or "", i.instance_id))


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in item.get("Tags", [])}
