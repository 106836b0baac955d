"""`WorkQueue` over SQS: the cloud's queue, and the `--state moto` baseline of `lockgate serve`.

In AWS, Lambda's event source receives and deletes; `receive`/`delete` serve local pollers.
"""

from __future__ import annotations

from typing import Any

from orchestrator.sessions.ports import Message, message_body


class SqsQueue:
    """The message body is `{"session_id": ...}` and nothing else."""

    def __init__(self, url: str, client: Any, dead_letter_url: str | None = None) -> None:
        self.url = url
        self.client = client
        self.dead_letter_url = dead_letter_url

    def send(self, session_id: str) -> None:
        """SendMessage."""
        self.client.send_message(QueueUrl=self.url, MessageBody=message_body(session_id))

    def receive(self, max_messages: int, wait_seconds: float) -> list[Message]:
        """ReceiveMessage (long polling up to 20 s, SQS's own bound)."""
        received = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=int(min(wait_seconds, 20)),
            AttributeNames=["All"],
        ).get("Messages", [])
        return [
            Message(
                message_id=m["MessageId"],
                receipt=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                sent_at=int(m.get("Attributes", {}).get("SentTimestamp", "0")) / 1000,
            )
            for m in received
        ]

    def delete(self, message: Message) -> None:
        """DeleteMessage."""
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)

    def dead_letters(self) -> SqsQueue:
        """The queue the redrive policy moves given-up messages to."""
        if self.dead_letter_url is None:
            raise ValueError("this queue has no dead-letter queue configured")
        return SqsQueue(self.dead_letter_url, self.client)
