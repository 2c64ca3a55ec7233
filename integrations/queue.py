"""SQS: long-polling the queue EventBridge delivers CodeBuild events into."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from integrations.aws import aws_call


class QueueMessage(BaseModel):
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


class EventQueue:
    def __init__(self, client: Any, url: str, *, wait_seconds: int = 10) -> None:
        self._client = client
        self.url = url
        self._wait_seconds = wait_seconds

    @aws_call("receive events from SQS")
    def receive(self, max_messages: int = 10) -> list[QueueMessage]:
        response = self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [
            QueueMessage(
                message_id=item["MessageId"],
                receipt_handle=item["ReceiptHandle"],
                body=item.get("Body", ""),
                receive_count=int(item.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for item in response.get("Messages", [])
        ]

    @aws_call("delete a handled event from SQS")
    def delete(self, message: QueueMessage) -> None:
        self._client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)
