"""Checkpoints: the loop's `SessionStore`, made durable by a `SessionRepository`.

A step's events are buffered while it runs and written with its checkpoint, in one conditional
write; observers (push, metrics, waiters) see each checkpoint once, after it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.ports import Event
from orchestrator.sessions.ports import SessionRepository
from orchestrator.sessions.record import SessionRecord
from orchestrator.types import SessionState

Observer = Callable[[SessionRecord, list[dict[str, Any]]], None]


class BufferedEvents:
    """Collects a step's events until its checkpoint writes them."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []

    def publish(self, event: Event) -> None:
        """Keep the event for the next checkpoint."""
        self.pending.append({"step": event.step, "kind": event.kind, "data": event.data})

    def drain(self) -> list[dict[str, Any]]:
        """Hand over and forget the pending events."""
        drained, self.pending = self.pending, []
        return drained


class CheckpointStore:
    """The loop's `SessionStore`, made durable: every save is a conditional checkpoint."""

    def __init__(
        self,
        repo: SessionRepository,
        record: SessionRecord,
        events: BufferedEvents,
        clock: Callable[[], float],
        after: Observer,
    ) -> None:
        self.repo, self.record, self.events, self.clock, self.after = (
            repo,
            record,
            events,
            clock,
            after,
        )

    def save(self, state: SessionState) -> None:
        """Checkpoint the state with the events published since the last save."""
        events = self.events.drain()
        self.record = self.repo.checkpoint(self.record, state, events, self.clock())
        self.after(self.record, events)

    def load(self, session_id: str) -> SessionState | None:
        """The last checkpoint."""
        return self.repo.get(session_id).state
