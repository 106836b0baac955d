"""The session runtime's ports: where sessions live, how work is queued, who is subscribed.

Adapters, one module each: `memory` (tests and one-process runs), `postgres` (`lockgate serve`:
durable across restarts), `dynamodb` and `sqs` (the cloud). One contract-test suite
(`tests/sessions/test_store_contract.py`) runs against every adapter, so they cannot drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.sessions.record import SessionRecord, StoredEvent
from orchestrator.types import SessionState


class SessionRepository(Protocol):
    """Durable sessions with a lease, versioned checkpoints and numbered events."""

    def create(self, record: SessionRecord) -> None:
        """Store a new record; SessionExists if the id was created before."""
        ...

    def get(self, session_id: str) -> SessionRecord:
        """The record with its last checkpoint, or SessionNotFound."""
        ...

    def claim(
        self, session_id: str, worker: str, now: float, lease_seconds: float
    ) -> SessionRecord:
        """Take the lease (LeaseHeld if another live worker has it); status becomes running.
        A terminal session is returned as it is, without a lease."""
        ...

    def checkpoint(
        self, record: SessionRecord, state: SessionState, events: list[dict[str, Any]], now: float
    ) -> SessionRecord:
        """Write the new steps, the state and the events atomically, conditional on the
        record's version, the lease and no cancel request (CancelRequested, LeaseLost).
        Returns the updated record."""
        ...

    def release(self, record: SessionRecord) -> None:
        """Give the lease back (the session continues in another invocation)."""
        ...

    def request_cancel(self, session_id: str, now: float) -> SessionRecord:
        """Flag the session for cancellation; a queued session is cancelled at once."""
        ...

    def fail(self, session_id: str, reason: str, now: float) -> None:
        """Mark a non-terminal session failed with the reason."""
        ...

    def events(self, session_id: str, after: int, limit: int = 100) -> list[StoredEvent]:
        """Events numbered after `after`, in order."""
        ...

    def owned(self, owner: str, limit: int, before: float | None = None) -> list[SessionRecord]:
        """An owner's sessions (`tenant#user`), newest first, created before `before` if given;
        the records carry no state (a listing, not a checkpoint)."""
        ...


@dataclass(frozen=True)
class Message:
    """One received unit of work, as an SQS event source hands it to the worker."""

    message_id: str
    receipt: str
    body: str
    receive_count: int
    sent_at: float


class WorkQueue(Protocol):
    """Where the API and the worker put sessions to advance."""

    def send(self, session_id: str) -> None:
        """Enqueue one session."""
        ...


class PullQueue(WorkQueue, Protocol):
    """A queue a local poller drains the way Lambda's SQS event source does: received
    messages are invisible for the visibility timeout, deleted when handled, redelivered
    otherwise, and moved to the dead-letter queue after `max_receive_count` receives."""

    def receive(self, max_messages: int, wait_seconds: float) -> list[Message]:
        """Up to `max_messages` visible messages (waiting up to `wait_seconds` for one)."""
        ...

    def delete(self, message: Message) -> None:
        """The message was handled."""
        ...

    def dead_letters(self) -> PullQueue:
        """The dead-letter queue."""
        ...


def message_body(session_id: str) -> str:
    """The only message body: `{"session_id": ...}`."""
    return json.dumps({"session_id": session_id})


def session_id_of(body: str) -> str:
    """The session id in a message body; ValueError for anything else (a poison message)."""
    parsed = json.loads(body)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("session_id"), str):
        raise ValueError("message body has no session_id")
    return str(parsed["session_id"])


class Subscriptions(Protocol):
    """Which push connections follow which session (the WebSocket API's state)."""

    def connect(self, connection_id: str, owner: str) -> None:
        """Remember a connection and whose it is (the owner's principal as JSON)."""
        ...

    def owner(self, connection_id: str) -> str | None:
        """The owner a connection was opened by, or None if it is unknown."""
        ...

    def subscribe(self, connection_id: str, session_id: str) -> None:
        """Follow a session's events on this connection."""
        ...

    def connections(self, session_id: str) -> list[str]:
        """Connections following a session."""
        ...

    def forget(self, connection_id: str, session_id: str | None = None) -> None:
        """Drop one subscription, or the whole connection when `session_id` is None."""
        ...
