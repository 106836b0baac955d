"""Advance one session from its last checkpoint: the worker's whole job, independent of SQS.

The worker takes the session's lease, rebuilds the orchestrator for the session, and steps
until the session ends, the user cancels, or the invocation is about to run out of time (then
it checkpoints, frees the lease and re-enqueues the session). Every step is checkpointed with
its events before the next model call; a step whose checkpoint never happened (a crash) is
run again, and its tool call carries the same idempotency key, so it writes nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.loop import Orchestrator
from orchestrator.ports import Event, EventPublisher, SessionStore
from orchestrator.queue import WorkQueue
from orchestrator.sessions import CancelRequested, SessionRecord, SessionRepository
from orchestrator.types import SessionState

Outcome = Literal["done", "continued"]
OrchestratorFactory = Callable[[SessionRecord, SessionStore, EventPublisher], Orchestrator]


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
        after: Callable[[SessionRecord, list[dict[str, Any]]], None],
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


@dataclass
class Worker:
    """Everything a worker needs; `build` wires the orchestrator for one session."""

    repo: SessionRepository
    queue: WorkQueue
    build: OrchestratorFactory
    worker_id: str
    lease_seconds: float
    reserve_seconds: float = 30.0
    clock: Callable[[], float] = time.time
    push: Callable[[SessionRecord, list[dict[str, Any]]], None] = field(
        default=lambda record, events: None
    )

    def advance(self, session_id: str, remaining_seconds: Callable[[], float]) -> Outcome:
        """Step the session until it ends or time runs short. Raises LeaseHeld if another worker
        has it (the message is retried later) and LeaseLost if the lease was taken mid-way."""
        record = self.repo.claim(session_id, self.worker_id, self.clock(), self.lease_seconds)
        if record.status.terminal:
            return "done"
        events = BufferedEvents()
        store = CheckpointStore(self.repo, record, events, self.clock, self.push)
        orchestrator = self.build(record, store, events)
        state = record.state or orchestrator.start(
            record.session_id, record.request, record.principal
        )
        try:
            while not state.done:
                if store.record.cancel_requested:
                    orchestrator.cancel(state, "cancelled by the user")
                    return "done"
                if remaining_seconds() < self.reserve_seconds:
                    self.repo.release(store.record)
                    self.queue.send(session_id)
                    return "continued"
                state = orchestrator.step(state)
        except CancelRequested:
            # The step's effects are idempotent and were not checkpointed; end at the last one.
            store.record = self.repo.get(session_id)
            events.drain()
            last = store.record.state or state
            orchestrator.cancel(last, "cancelled by the user")
        return "done"
