"""Sessions and the work queue in this process's memory, behind one lock.

For unit tests and one-process runs: the same semantics as the durable adapters (the shared
contract tests prove it), none of their durability.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.sessions.ports import Message, message_body
from orchestrator.sessions.record import (
    CancelRequested,
    LeaseHeld,
    LeaseLost,
    SessionExists,
    SessionNotFound,
    SessionRecord,
    Status,
    StoredEvent,
    status_of,
)
from orchestrator.types import SessionState


class MemorySessions:
    """`SessionRepository` in a dict of immutable records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, SessionRecord] = {}
        self._events: dict[str, list[StoredEvent]] = {}

    def _current(self, session_id: str) -> SessionRecord:
        try:
            return self._records[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None

    def create(self, record: SessionRecord) -> None:
        """Keep a new record; the id must be new."""
        with self._lock:
            if record.session_id in self._records:
                raise SessionExists(record.session_id)
            self._records[record.session_id] = record.model_copy(update={"version": 0})
            self._events[record.session_id] = []

    def get(self, session_id: str) -> SessionRecord:
        """The record."""
        with self._lock:
            return self._current(session_id)

    def claim(
        self, session_id: str, worker: str, now: float, lease_seconds: float
    ) -> SessionRecord:
        """Take the lease of an active session whose lease is free, expired or ours."""
        with self._lock:
            record = self._current(session_id)
            if record.status.terminal:
                return record
            if record.lease_until >= now and record.lease_owner != worker:
                raise LeaseHeld(session_id)
            claimed = record.model_copy(
                update={
                    "status": Status.RUNNING,
                    "lease_owner": worker,
                    "lease_until": now + lease_seconds,
                    "version": record.version + 1,
                    "updated_at": now,
                }
            )
            self._records[session_id] = claimed
            return claimed

    def checkpoint(
        self, record: SessionRecord, state: SessionState, events: list[dict[str, Any]], now: float
    ) -> SessionRecord:
        """Conditional on the version, the lease and (while running) no cancel request."""
        status = Status.RUNNING if state.outcome is None else status_of(state.outcome)
        with self._lock:
            current = self._current(record.session_id)
            if current.version != record.version or current.lease_owner != record.lease_owner:
                raise LeaseLost(record.session_id)
            if state.outcome is None and current.cancel_requested:
                raise CancelRequested(record.session_id)
            stored = self._events[record.session_id]
            for offset, event in enumerate(events, start=1):
                # Stored as JSON, as the durable adapters do: what a reader gets is data.
                body = json.loads(json.dumps(event, default=str))
                stored.append(StoredEvent(seq=current.events_count + offset, **body))
            updated = current.model_copy(
                update={
                    "version": current.version + 1,
                    "status": status,
                    "state": state,
                    "events_count": current.events_count + len(events),
                    "updated_at": now,
                    "reason": state.reason
                    if state.outcome is not None and state.reason
                    else current.reason,
                }
            )
            self._records[record.session_id] = updated
            return updated

    def release(self, record: SessionRecord) -> None:
        """Free the lease if it is still ours."""
        with self._lock:
            current = self._current(record.session_id)
            if current.lease_owner == record.lease_owner:
                self._records[record.session_id] = current.model_copy(update={"lease_until": 0.0})

    def request_cancel(self, session_id: str, now: float) -> SessionRecord:
        """A queued session is cancelled at once; a running one is flagged for its worker."""
        with self._lock:
            current = self._current(session_id)
            if current.status is Status.QUEUED:
                current = current.model_copy(
                    update={
                        "status": Status.CANCELLED,
                        "cancel_requested": True,
                        "reason": "cancelled by the user before it started",
                        "updated_at": now,
                    }
                )
            elif current.status is Status.RUNNING:
                current = current.model_copy(update={"cancel_requested": True, "updated_at": now})
            self._records[session_id] = current
            return current

    def fail(self, session_id: str, reason: str, now: float) -> None:
        """Mark an active session failed."""
        with self._lock:
            current = self._current(session_id)
            if not current.status.terminal:
                self._records[session_id] = current.model_copy(
                    update={
                        "status": Status.FAILED,
                        "reason": reason,
                        "updated_at": now,
                        "lease_until": 0.0,
                    }
                )

    def events(self, session_id: str, after: int, limit: int = 100) -> list[StoredEvent]:
        """Events numbered after `after`."""
        with self._lock:
            self._current(session_id)
            return [e for e in self._events[session_id] if e.seq > after][:limit]

    def owned(self, owner: str, limit: int, before: float | None = None) -> list[SessionRecord]:
        """An owner's sessions, newest first."""
        with self._lock:
            mine = [
                r.model_copy(update={"state": None})
                for r in self._records.values()
                if r.owner == owner and (before is None or r.created_at < before)
            ]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]


@dataclass
class _Slot:
    id: int
    body: str
    sent_at: float
    visible_at: float
    receive_count: int = 0
    receipt: str = ""


class MemoryQueue:
    """`PullQueue` in a list, with visibility timeout, receive count and a dead-letter queue."""

    _ids = itertools.count(1)

    def __init__(
        self,
        *,
        visibility_seconds: float = 30.0,
        max_receive_count: int = 3,
        with_dead_letters: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.visibility_seconds, self.max_receive_count = visibility_seconds, max_receive_count
        self.clock = clock
        self._slots: list[_Slot] = []
        self._ready = threading.Condition()
        self._dead = (
            MemoryQueue(
                visibility_seconds=visibility_seconds,
                max_receive_count=max_receive_count,
                with_dead_letters=False,
                clock=clock,
            )
            if with_dead_letters
            else None
        )

    def send(self, session_id: str) -> None:
        """Append a message, visible at once."""
        self._put(message_body(session_id))

    def _put(self, body: str) -> None:
        now = self.clock()
        with self._ready:
            self._slots.append(_Slot(next(self._ids), body, now, now))
            self._ready.notify_all()

    def _take(self, max_messages: int) -> list[Message]:
        now = self.clock()
        taken: list[Message] = []
        with self._ready:
            for slot in list(self._slots):
                if slot.visible_at > now:
                    continue
                if self._dead is not None and slot.receive_count >= self.max_receive_count:
                    self._slots.remove(slot)
                    self._dead._put(slot.body)
                    continue
                if len(taken) == max_messages:
                    break
                slot.receive_count += 1
                slot.visible_at = now + self.visibility_seconds
                slot.receipt = uuid.uuid4().hex
                taken.append(
                    Message(str(slot.id), slot.receipt, slot.body, slot.receive_count, slot.sent_at)
                )
        return taken

    def receive(self, max_messages: int, wait_seconds: float) -> list[Message]:
        """Visible messages, waiting up to `wait_seconds` for one."""
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = self._take(max_messages)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with self._ready:
                self._ready.wait(timeout=min(remaining, 0.05))

    def delete(self, message: Message) -> None:
        """Delete by receipt (a message received again since is kept)."""
        with self._ready:
            self._slots = [
                s
                for s in self._slots
                if not (str(s.id) == message.message_id and s.receipt == message.receipt)
            ]

    def dead_letters(self) -> MemoryQueue:
        """The dead-letter queue."""
        if self._dead is None:
            raise ValueError("this queue has no dead-letter queue configured")
        return self._dead
