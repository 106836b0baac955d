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
from typing import Literal

from orchestrator.loop import Orchestrator
from orchestrator.ports import EventPublisher, SessionStore
from orchestrator.sessions.checkpoints import BufferedEvents, CheckpointStore, Observer
from orchestrator.sessions.ports import SessionRepository, WorkQueue
from orchestrator.sessions.record import CancelRequested, SessionRecord

Outcome = Literal["done", "continued"]
OrchestratorFactory = Callable[[SessionRecord, SessionStore, EventPublisher], Orchestrator]


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
    push: Observer = field(default=lambda record, events: None)

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
