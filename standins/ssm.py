"""An SSM Run Command stand-in speaking the real AWS JSON 1.1 protocol, for what moto lacks.

moto's SSM reports every command Success at once and has no ListCommandInvocations or
DescribeInstanceInformation. This one resolves tag targets against registered instances,
keeps the exact Parameters it received, and plays each instance's scripted outcome (status,
output, exit code) after a set number of polls. Point boto3 at it with `AWS_ENDPOINT_URL_SSM`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from standins.aws_json import AwsJsonStandIn, error_response, json_response

DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
MAX_INSTANCE_IDS = 50
STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
PLUGIN_OUTPUT_LIMIT = 2_500
# Scripted outcome (SSM's StatusDetails) -> the invocation's Status. AWS's Status enum has no
# Undeliverable/Terminated/…TimedOut: those appear only in StatusDetails.
FINAL_STATUSES = {
    "Success": "Success",
    "Failed": "Failed",
    "Cancelled": "Cancelled",
    "TimedOut": "TimedOut",
    "ExecutionTimedOut": "TimedOut",
    "DeliveryTimedOut": "TimedOut",
    "Undeliverable": "Failed",
    "Terminated": "Failed",
}
# Details shown for a scripted Status that has a more precise name in StatusDetails.
_DETAILS = {"TimedOut": "ExecutionTimedOut"}
# Outcomes that never ran the script (no output, no exit code).
_NOT_DELIVERED = {"Undeliverable", "DeliveryTimedOut", "Terminated"}


@dataclass
class _Outcome:
    status: str = "Success"
    stdout: str = ""
    stderr: str = ""
    response_code: int = 0
    polls_before_done: int = 1


@dataclass
class _Invocation:
    command_id: str
    instance_id: str
    outcome: _Outcome
    reads: int = 0
    cancelled: bool = False
    started: float | None = None
    ended: float | None = None

    @property
    def details(self) -> str:
        """SSM's StatusDetails for what has been observed so far."""
        if self.cancelled:
            return "Cancelled"
        if self.reads <= self.outcome.polls_before_done:
            if self.reads <= 1 or self.outcome.status in _NOT_DELIVERED:
                return "Pending"
            return "InProgress"
        return _DETAILS.get(self.outcome.status, self.outcome.status)

    @property
    def status(self) -> str:
        details = self.details
        return FINAL_STATUSES.get(details, details)

    @property
    def final(self) -> bool:
        return self.details in FINAL_STATUSES

    @property
    def ran(self) -> bool:
        """Whether the script ran to an end, so its exit code and output exist."""
        return self.final and not self.cancelled and self.outcome.status not in _NOT_DELIVERED

    @property
    def response_code(self) -> int:
        return self.outcome.response_code if self.ran else -1

    @property
    def stdout(self) -> str:
        return self.outcome.stdout if self.ran else ""

    @property
    def stderr(self) -> str:
        return self.outcome.stderr if self.ran else ""

    def read(self) -> None:
        """One poll: the invocation moves Pending -> InProgress -> its outcome."""
        if self.final:
            return
        self.reads += 1
        now = time.time()
        delivered = self.outcome.status not in _NOT_DELIVERED
        if delivered and self.started is None and (self.final or self.details == "InProgress"):
            self.started = now
        if self.final:
            self.ended = now


class FakeSsm(AwsJsonStandIn):
    TARGET_PREFIX = "AmazonSSM."

    def __init__(self, *, region: str = "ap-northeast-2") -> None:
        super().__init__()
        self.region = region
        self.instances: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self.invocations: dict[str, dict[str, _Invocation]] = {}
        self.sent_at: list[float] = []
        self._outcomes: dict[str, list[_Outcome]] = {}

    # -- scripting ---------------------------------------------------------------------------

    def register_instance(
        self,
        instance_id: str,
        tags: dict[str, str],
        *,
        ping_status: str = "Online",
        platform: str = "Amazon Linux",
    ) -> None:
        """A managed instance, as the SSM agent would have registered it."""
        self.instances[instance_id] = {
            "tags": dict(tags),
            "ping_status": ping_status,
            "platform": platform,
            "registered": time.time(),
        }

    def script(
        self,
        instance_id: str,
        *,
        status: str = "Success",
        stdout: str = "",
        stderr: str = "",
        response_code: int = 0,
        polls_before_done: int = 1,
    ) -> None:
        """The outcome of the NEXT command on that instance (SSM's StatusDetails names).

        The first `polls_before_done` reads of the invocation see it unfinished (Pending on the
        first, InProgress after); the next read sees the outcome. Reads are GetCommandInvocation
        and ListCommandInvocations calls; ListCommands only reports.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final status: {sorted(FINAL_STATUSES)}")
        self._outcomes.setdefault(instance_id, []).append(
            _Outcome(status, stdout, stderr, response_code, max(0, polls_before_done))
        )

    def received(self, action: str, body: dict[str, Any]) -> None:
        if action == "SendCommand":
            self.sent_at.append(time.monotonic())  # on arrival, scripted errors included

    def sent_scripts(self) -> list[list[str]]:
        """The `commands` parameter of every SendCommand accepted, oldest first."""
        return [list(c["Parameters"].get("commands", [])) for c in self.commands.values()]

    # -- protocol ----------------------------------------------------------------------------

    def _a_SendCommand(self, body: dict[str, Any]) -> web.Response:
        document = body.get("DocumentName", "")
        if document != DOCUMENT:
            return error_response("InvalidDocument", f"Document {document} does not exist")
        parameters = body.get("Parameters") or {}
        commands = parameters.get("commands")
        if not isinstance(commands, list) or not commands:
            return error_response("InvalidParameters", "Parameter 'commands' is required")
        instance_ids: list[str] = body.get("InstanceIds") or []
        targets: list[dict[str, Any]] = body.get("Targets") or []
        if instance_ids and targets:
            return error_response(
                "InvalidParameters", "Specify either InstanceIds or Targets, not both"
            )
        if not instance_ids and not targets:
            return error_response("InvalidParameters", "Specify InstanceIds or Targets")
        if instance_ids:
            if len(instance_ids) > MAX_INSTANCE_IDS:
                return _validation("instanceIds", instance_ids, MAX_INSTANCE_IDS)
            unknown = [i for i in instance_ids if i not in self.instances]
            if unknown:
                return error_response(
                    "InvalidInstanceId", f"Instances {unknown} not in a valid state"
                )
            resolved = list(dict.fromkeys(instance_ids))
        else:
            if len(targets) > 5:
                return _validation("targets", targets, 5)
            if any(len(t.get("Values", [])) > MAX_INSTANCE_IDS for t in targets):
                return _validation("targets.member.values", targets, MAX_INSTANCE_IDS)
            resolved = [i for i in self.instances if self._matches(i, targets)]
        command_id = str(uuid.uuid4())
        command = {
            "CommandId": command_id,
            "DocumentName": document,
            "DocumentVersion": "$DEFAULT",
            "Comment": body.get("Comment", ""),
            "Parameters": parameters,
            "InstanceIds": instance_ids,
            "Targets": targets,
            "RequestedDateTime": time.time(),
            "Status": "Pending",
            "StatusDetails": "Pending",
            "TimeoutSeconds": body.get("TimeoutSeconds", 3600),
            "MaxConcurrency": body.get("MaxConcurrency", "50"),
            "MaxErrors": body.get("MaxErrors", "0"),
            "TargetCount": len(resolved),
            "CompletedCount": 0,
            "ErrorCount": 0,
            "DeliveryTimedOutCount": 0,
            "ServiceRole": "",
            "NotificationConfig": {},
            "CloudWatchOutputConfig": body.get("CloudWatchOutputConfig", {}),
        }
        self.commands[command_id] = command
        self.invocations[command_id] = {
            instance_id: _Invocation(command_id, instance_id, self._next_outcome(instance_id))
            for instance_id in resolved
        }
        return json_response({"Command": command})

    def _matches(self, instance_id: str, targets: list[dict[str, Any]]) -> bool:
        """Every target key must match; within one key any of its values will do."""
        tags = self.instances[instance_id]["tags"]
        for target in targets:
            key, values = target.get("Key", ""), target.get("Values", [])
            if key == "InstanceIds":
                ok = instance_id in values
            elif key.startswith("tag:"):
                ok = tags.get(key.removeprefix("tag:")) in values
            elif key == "tag-key":
                ok = any(v in tags for v in values)
            else:
                ok = False
            if not ok:
                return False
        return True

    def _next_outcome(self, instance_id: str) -> _Outcome:
        queued = self._outcomes.get(instance_id)
        if queued:
            return queued.pop(0)
        if self.instances[instance_id]["ping_status"] != "Online":
            return _Outcome(status="DeliveryTimedOut", response_code=-1)
        return _Outcome()

    def _a_GetCommandInvocation(self, body: dict[str, Any]) -> web.Response:
        command_id, instance_id = body.get("CommandId", ""), body.get("InstanceId", "")
        invocation = self.invocations.get(command_id, {}).get(instance_id)
        if invocation is None:
            return error_response("InvocationDoesNotExist", "")
        invocation.read()
        command = self.commands[command_id]
        return json_response(
            {
                "CommandId": command_id,
                "InstanceId": instance_id,
                "Comment": command["Comment"],
                "DocumentName": command["DocumentName"],
                "DocumentVersion": command["DocumentVersion"],
                "PluginName": PLUGIN,
                "ResponseCode": invocation.response_code,
                "ExecutionStartDateTime": _ssm_time(invocation.started),
                "ExecutionElapsedTime": _elapsed(invocation.started, invocation.ended),
                "ExecutionEndDateTime": _ssm_time(invocation.ended),
                "Status": invocation.status,
                "StatusDetails": invocation.details,
                "StandardOutputContent": invocation.stdout[:STDOUT_LIMIT],
                "StandardOutputUrl": "",
                "StandardErrorContent": invocation.stderr[:STDERR_LIMIT],
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {
                    "CloudWatchLogGroupName": "",
                    "CloudWatchOutputEnabled": False,
                },
            }
        )

    def _a_ListCommandInvocations(self, body: dict[str, Any]) -> web.Response:
        command_id = body.get("CommandId")
        if command_id is not None and command_id not in self.commands:
            return error_response("InvalidCommandId", "")
        wanted_instance = body.get("InstanceId")
        details = bool(body.get("Details"))
        rows = [
            invocation
            for cid, by_instance in self.invocations.items()
            if command_id is None or cid == command_id
            for invocation in by_instance.values()
            if wanted_instance is None or invocation.instance_id == wanted_instance
        ]
        page, token = _page(rows, body, default=50)
        result = []
        for invocation in page:
            invocation.read()
            command = self.commands[invocation.command_id]
            item: dict[str, Any] = {
                "CommandId": invocation.command_id,
                "InstanceId": invocation.instance_id,
                # EC2 instances show the Name tag here when they have one.
                "InstanceName": self.instances[invocation.instance_id]["tags"].get("Name", ""),
                "Comment": command["Comment"],
                "DocumentName": command["DocumentName"],
                "DocumentVersion": command["DocumentVersion"],
                "RequestedDateTime": command["RequestedDateTime"],
                "Status": invocation.status,
                "StatusDetails": invocation.details,
                "TraceOutput": "",
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
                "CommandPlugins": [],
                "ServiceRole": "",
                "NotificationConfig": {},
                "CloudWatchOutputConfig": command["CloudWatchOutputConfig"],
            }
            if details:
                item["CommandPlugins"] = [_plugin(invocation)]
            result.append(item)
        response: dict[str, Any] = {"CommandInvocations": result}
        if token:
            response["NextToken"] = token
        return json_response(response)

    def _a_ListCommands(self, body: dict[str, Any]) -> web.Response:
        command_id = body.get("CommandId")
        if command_id is not None and command_id not in self.commands:
            return error_response("InvalidCommandId", "")
        ids = [command_id] if command_id else list(self.commands)
        rows = [self._summarise(cid) for cid in ids]
        page, token = _page(rows, body, default=50)
        response: dict[str, Any] = {"Commands": page}
        if token:
            response["NextToken"] = token
        return json_response(response)

    def _summarise(self, command_id: str) -> dict[str, Any]:
        """The command's overall status from its invocations, with MaxErrors 0."""
        command = self.commands[command_id]
        invocations = list(self.invocations[command_id].values())
        details = [i.details for i in invocations]
        finished = [d for d in details if d in FINAL_STATUSES]
        errors = [d for d in finished if d in {"Failed", "ExecutionTimedOut", "Terminated"}]
        undelivered = [d for d in finished if d in {"DeliveryTimedOut", "Undeliverable"}]
        if len(finished) < len(details):
            started = any(d != "Pending" for d in details)
            status = overall = "InProgress" if started else "Pending"
        elif "Cancelled" in finished:
            status = overall = "Cancelled"
        elif errors:
            status, overall = "Failed", "Failed"
            if all(d == "ExecutionTimedOut" for d in errors):
                status, overall = "TimedOut", "ExecutionTimedOut"
        elif undelivered:
            # Delivery problems don't count as errors; they make the command Incomplete.
            status, overall = "Failed", "Incomplete"
        else:
            status = overall = "Success"
        command.update(
            Status=status,
            StatusDetails=overall,
            CompletedCount=len(finished),
            ErrorCount=len(errors),
            DeliveryTimedOutCount=details.count("DeliveryTimedOut"),
        )
        return command

    def _a_CancelCommand(self, body: dict[str, Any]) -> web.Response:
        command_id = body.get("CommandId", "")
        if command_id not in self.commands:
            return error_response("InvalidCommandId", "")
        wanted = body.get("InstanceIds") or list(self.invocations[command_id])
        for instance_id in wanted:
            invocation = self.invocations[command_id].get(instance_id)
            if invocation is not None and not invocation.final:
                invocation.cancelled = True
                invocation.ended = time.time()
        return json_response({})

    def _a_DescribeInstanceInformation(self, body: dict[str, Any]) -> web.Response:
        conditions: list[tuple[str, list[str]]] = [
            (f.get("key", ""), list(f.get("valueSet", [])))
            for f in body.get("InstanceInformationFilterList") or []
        ]
        conditions += [
            (f.get("Key", ""), list(f.get("Values", []))) for f in body.get("Filters") or []
        ]
        rows = []
        for instance_id, instance in self.instances.items():
            matched = True
            for key, values in conditions:
                if key == "InstanceIds":
                    matched = instance_id in values
                elif key == "PingStatus":
                    matched = instance["ping_status"] in values
                elif key.startswith("tag:"):
                    matched = instance["tags"].get(key.removeprefix("tag:")) in values
                elif key == "tag-key":
                    matched = any(v in instance["tags"] for v in values)
                else:
                    return error_response(
                        "InvalidInstanceInformationFilterValue", f"Unsupported key {key}"
                    )
                if not matched:
                    break
            if matched:
                rows.append(
                    {
                        "InstanceId": instance_id,
                        "PingStatus": instance["ping_status"],
                        "LastPingDateTime": time.time(),
                        "AgentVersion": "3.3.1142.0",
                        "IsLatestVersion": False,
                        "PlatformType": "Linux",
                        "PlatformName": instance["platform"],
                        "PlatformVersion": "2023",
                        "ResourceType": "EC2Instance",
                        "IPAddress": "10.0.0.10",
                        "ComputerName": f"{instance_id}.{self.region}.compute.internal",
                        "RegistrationDate": instance["registered"],
                    }
                )
        page, token = _page(rows, body, default=50)
        response: dict[str, Any] = {"InstanceInformationList": page}
        if token:
            response["NextToken"] = token
        return json_response(response)


def _plugin(invocation: _Invocation) -> dict[str, Any]:
    # SSM's combined output: stdout, then stderr under a marker, cut at 2,500 characters.
    output = invocation.stdout
    if invocation.stderr:
        output += "\n----------ERROR-------\n" + invocation.stderr
    plugin: dict[str, Any] = {
        "Name": PLUGIN,
        "Status": invocation.status,
        "StatusDetails": invocation.details,
        "ResponseCode": invocation.response_code,
        "Output": output[:PLUGIN_OUTPUT_LIMIT],
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "OutputS3Region": "",
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
    }
    if invocation.started is not None:
        plugin["ResponseStartDateTime"] = invocation.started
    if invocation.ended is not None:
        plugin["ResponseFinishDateTime"] = invocation.ended
    return plugin


def _page(rows: list[Any], body: dict[str, Any], *, default: int) -> tuple[list[Any], str | None]:
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or default)
    end = start + size
    return rows[start:end], (str(end) if end < len(rows) else None)


def _ssm_time(epoch: float | None) -> str:
    """GetCommandInvocation's date-times are strings, e.g. "2024-05-09T01:40:24.599Z"."""
    if epoch is None:
        return ""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _elapsed(started: float | None, ended: float | None) -> str:
    if started is None or ended is None:
        return ""
    return f"PT{ended - started:.3f}S"


def _validation(member: str, value: Any, limit: int) -> web.Response:
    return error_response(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must have length less than or equal to {limit}",
    )
