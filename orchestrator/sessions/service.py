"""What the sessions API does, independent of HTTP: create, wait, owned, events, cancel.

The caller's principal comes from the authenticated request. A session that is not the
caller's is `SessionNotFound`, exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sessions.ports import SessionRepository, WorkQueue
from orchestrator.sessions.record import (
    SessionExists,
    SessionNotFound,
    SessionOptions,
    SessionRecord,
    StoredEvent,
    owner_key,
)
from orchestrator.types import Principal


class ModelNotAllowed(Exception):
    """The caller asked for a model the deployment does not offer."""

    def __init__(self, model: str | None, allowed: list[str]) -> None:
        super().__init__(f"model {model!r} is not allowed")
        self.model, self.allowed = model, allowed


class IdempotencyConflict(Exception):
    """An `Idempotency-Key` the caller used before, with another request."""


# An Idempotency-Key: printable ASCII without spaces, as HTTP header tokens are.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class Changes:
    """Wakes waiters in this process when a session's checkpoint is stored here.

    Waiters in another process (the API Lambda, while the worker is another function) are not
    woken: they poll, with a bounded interval.
    """

    KEEP = 10_000

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._counts: dict[str, int] = {}

    def token(self, session_id: str) -> int:
        """The current change count of a session, to wait for the next change after it."""
        with self._changed:
            return self._counts.get(session_id, 0)

    def notify(self, record: SessionRecord, events: list[dict[str, Any]]) -> None:
        """A checkpoint of `record` was stored (a worker observer)."""
        with self._changed:
            self._counts[record.session_id] = self._counts.get(record.session_id, 0) + 1
            while len(self._counts) > self.KEEP:
                # The oldest entries are finished sessions; a waiter on one that is dropped
                # only wakes spuriously (and reads again) or at its poll interval.
                del self._counts[next(iter(self._counts))]
            self._changed.notify_all()

    def wait(self, session_id: str, token: int, timeout: float) -> None:
        """Return when the session changed after `token`, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._counts.get(session_id, 0) != token, timeout=max(0.0, timeout)
            )


# One per process: the worker's observers notify it, the API's waits listen to it.
CHANGES = Changes()


@dataclass
class SessionService:
    """The sessions API's behaviour over a repository and a work queue."""

    repo: SessionRepository
    queue: WorkQueue
    default_model: str
    allowed_models: list[str] = field(default_factory=list)
    max_wait_seconds: float = 25.0
    changes: Changes = CHANGES
    clock: Callable[[], float] = time.time
    poll_seconds: float = 0.5

    def create(
        self,
        caller: Principal,
        request: str,
        options: SessionOptions,
        idempotency_key: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Record the session (status `queued`), then enqueue it; returns it and whether it is
        new. ModelNotAllowed if the options name a model the deployment does not offer.

        With an idempotency key the session id is derived from the caller and the key, so a
        retried request finds the session its first attempt created (the store creates an id
        once, atomically) and no second agent starts; the same key with another request is an
        IdempotencyConflict. A retry also enqueues again: harmless (the worker's lease and the
        tools' idempotency keys make a duplicate message a no-op) and it repairs a first
        attempt that stored the record but died before enqueueing."""
        if options.model is not None and options.model not in {
            self.default_model,
            *self.allowed_models,
        }:
            raise ModelNotAllowed(options.model, sorted({self.default_model, *self.allowed_models}))
        now = self.clock()
        record = SessionRecord(
            session_id=uuid.uuid4().hex
            if idempotency_key is None
            else _keyed_id(owner_key(caller), idempotency_key),
            principal=caller,
            request=request,
            options=options,
            created_at=now,
            updated_at=now,
        )
        try:
            self.repo.create(record)
        except SessionExists:
            if idempotency_key is None:
                raise
            first = self.repo.get(record.session_id)
            if (first.request, first.options) != (request, options) or not first.owned_by(caller):
                raise IdempotencyConflict(idempotency_key) from None
            if not first.status.terminal:
                self.queue.send(first.session_id)
            return first, False
        self.queue.send(record.session_id)
        return record, True

    def list_owned(
        self, caller: Principal, limit: int, before: float | None = None
    ) -> list[SessionRecord]:
        """The caller's sessions, newest first (created before `before` if given)."""
        return self.repo.owned(owner_key(caller), limit, before)

    def wait(self, record: SessionRecord, seconds: float) -> SessionRecord:
        """The session once it is terminal, or as it is after `seconds` (capped at the
        deployment's `max_wait_seconds`)."""
        deadline = time.monotonic() + min(max(seconds, 0.0), self.max_wait_seconds)
        delay = 0.05
        current = record
        while True:
            token = self.changes.token(record.session_id)
            remaining = deadline - time.monotonic()
            if current.status.terminal or remaining <= 0:
                return current
            self.changes.wait(record.session_id, token, min(delay, remaining))
            delay = min(delay * 2, self.poll_seconds)
            current = self.repo.get(record.session_id)

    def owned(self, caller: Principal, session_id: str) -> SessionRecord:
        """The caller's session; SessionNotFound if it does not exist or is someone else's."""
        record = self.repo.get(session_id)
        if not record.owned_by(caller):
            raise SessionNotFound(session_id)
        return record

    def events(
        self, caller: Principal, session_id: str, after: int, limit: int
    ) -> tuple[SessionRecord, list[StoredEvent]]:
        """The caller's session and its events numbered after `after`."""
        record = self.owned(caller, session_id)
        return record, self.repo.events(session_id, after, limit)

    def cancel(self, caller: Principal, session_id: str) -> SessionRecord:
        """Cancel the caller's session: a queued one at once, a running one before its next
        step; a finished one stays as it is."""
        self.owned(caller, session_id)
        return self.repo.request_cancel(session_id, self.clock())


def _keyed_id(owner: str, key: str) -> str:
    """The session id a caller's idempotency key names."""
    return hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()[:32]
