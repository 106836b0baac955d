"""The work queue: a session id to advance. SQS in the cloud and in `lockgate serve` (moto)."""

from __future__ import annotations

import json
from typing import Any, Protocol


class WorkQueue(Protocol):
    """Where the API and the worker put sessions to advance."""

    def send(self, session_id: str) -> None:
        """Enqueue one session."""
        ...


class SqsQueue:
    """`WorkQueue` over SQS; the message body is `{"session_id": ...}` and nothing else."""

    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.client = client

    def send(self, session_id: str) -> None:
        """SendMessage."""
        self.client.send_message(
            QueueUrl=self.url, MessageBody=json.dumps({"session_id": session_id})
        )


def session_id_of(body: str) -> str:
    """The session id in a message body; ValueError for anything else (a poison message)."""
    parsed = json.loads(body)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("session_id"), str):
        raise ValueError("message body has no session_id")
    return str(parsed["session_id"])
