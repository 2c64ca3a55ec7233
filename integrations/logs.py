"""CloudWatch Logs: the tail of a build's log, newest pages first, bounded in lines and bytes."""

from __future__ import annotations

from typing import Any

from integrations.aws import aws_call

MAX_PAGE_EVENTS = 10_000  # GetLogEvents' own limit


class BuildLogs:
    def __init__(self, client: Any) -> None:
        self._client = client

    @aws_call("read the build's log from CloudWatch Logs")
    def tail(
        self, group: str, stream: str, *, max_lines: int = 5_000, max_bytes: int = 2_000_000
    ) -> list[str]:
        """The last lines of a log stream, oldest first; never the whole of a huge log."""
        pages: list[list[str]] = []
        lines = 0
        size = 0
        token: str | None = None
        while lines < max_lines and size < max_bytes:
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": False,
                "limit": min(MAX_PAGE_EVENTS, max_lines - lines),
            }
            if token:
                kwargs["nextToken"] = token
            response = self._client.get_log_events(**kwargs)
            events = response.get("events", [])
            if not events:
                break
            page: list[str] = []
            for event in events:
                message = str(event.get("message", ""))
                size += len(message)
                page.extend(message.rstrip("\n").split("\n"))
            pages.append(page)
            lines += len(page)
            next_token = response.get("nextBackwardToken")
            if not next_token or next_token == token:
                break
            token = next_token
        ordered = [line for page in reversed(pages) for line in page]
        return ordered[-max_lines:]
