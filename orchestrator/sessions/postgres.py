"""Sessions and the work queue in PostgreSQL: the durable store of `lockgate serve`.

The same semantics as the DynamoDB and SQS adapters, on the same server as the tools' data
but in a schema of its own (`lockgate_runtime`), reached only by the runtime's own role: no
tool role has any privilege on it.

- `sessions`: one row per session; the immutable part as JSON (`spec`), the mutable part as
  columns that a checkpoint's `WHERE` tests (version, lease, cancel flag);
- `steps`, `events`: one row per step and per event, written once;
- `queue`: messages with a visibility deadline, a receive count and a queue name; receiving
  takes rows with `FOR UPDATE SKIP LOCKED`, so concurrent pollers never get the same message,
  and a message received `max_receive_count` times moves to the dead-letter queue.

A checkpoint is one transaction: the record's conditional update, then the new steps and
events. A crash between a tool call and its checkpoint leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import Connection
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from orchestrator.records import codec
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
from orchestrator.types import SessionState, Step

SCHEMA = "lockgate_runtime"
ACTIVE = (Status.QUEUED.value, Status.RUNNING.value)
# One lock key per database: held by the `lockgate serve` that owns the queue's pollers.
OWNER_LOCK = 0x10C6A7E

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.sessions (
    session_id text PRIMARY KEY,
    owner text NOT NULL,
    spec text NOT NULL,
    status text NOT NULL,
    version integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    lease_owner text,
    lease_until double precision NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    reason text,
    events_count integer NOT NULL DEFAULT 0,
    state text
);
CREATE INDEX IF NOT EXISTS sessions_by_owner ON {SCHEMA}.sessions (owner, created_at DESC);
CREATE TABLE IF NOT EXISTS {SCHEMA}.steps (
    session_id text NOT NULL REFERENCES {SCHEMA}.sessions ON DELETE CASCADE,
    idx integer NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (session_id, idx)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.events (
    session_id text NOT NULL REFERENCES {SCHEMA}.sessions ON DELETE CASCADE,
    seq integer NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.queue (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    body text NOT NULL,
    sent_at double precision NOT NULL,
    visible_at double precision NOT NULL,
    receive_count integer NOT NULL DEFAULT 0,
    receipt text
);
CREATE INDEX IF NOT EXISTS queue_visible ON {SCHEMA}.queue (queue, visible_at);
"""


def install(conn: Connection[Any], role: str | None = None) -> None:
    """Create the schema and its tables (idempotent); with `role`, grant it the runtime's
    privileges on them and nothing else."""
    conn.execute(DDL)
    if role is not None:
        conn.execute(f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}"')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO "{role}"'
        )
        conn.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO "{role}"')


def pool(url: str, size: int = 8) -> ConnectionPool[Connection[Any]]:
    """A connection pool for the runtime (opened at once; connections are checked on use)."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": False},
        check=ConnectionPool.check_connection,
        open=True,
        name="lockgate-runtime",
    )


class _Db:
    """A pool plus one transaction per `with` block."""

    def __init__(self, connections: ConnectionPool[Connection[Any]]) -> None:
        self.connections = connections

    @contextmanager
    def tx(self) -> Iterator[Connection[Any]]:
        with self.connections.connection() as conn, conn.transaction():
            yield conn


class PostgresSessions(_Db):
    """`SessionRepository` in the `lockgate_runtime` schema."""

    _COLUMNS = (
        "spec, status, version, updated_at, lease_owner, lease_until, cancel_requested,"
        " reason, events_count, state"
    )

    def _record(self, conn: Connection[Any], row: dict[str, Any]) -> SessionRecord:
        spec = json.loads(row["spec"])
        state = None
        if row["state"] is not None:
            bodies = conn.execute(
                f"SELECT body FROM {SCHEMA}.steps WHERE session_id = %s ORDER BY idx",
                (spec["session_id"],),
            ).fetchall()
            steps = tuple(codec(Step).validate_json(body) for (body,) in bodies)
            header = json.loads(row["state"])
            state = codec(SessionState).validate_python({**header, "steps": steps})
        return SessionRecord.model_validate(
            {
                **spec,
                "status": row["status"],
                "version": row["version"],
                "updated_at": row["updated_at"],
                "lease_owner": row["lease_owner"],
                "lease_until": row["lease_until"],
                "cancel_requested": row["cancel_requested"],
                "reason": row["reason"],
                "events_count": row["events_count"],
                "state": state,
            }
        )

    def _fetch(self, conn: Connection[Any], sql: str, params: tuple[Any, ...]) -> SessionRecord:
        cursor = conn.cursor(row_factory=dict_row)
        row = cursor.execute(sql, params).fetchone()
        if row is None:
            raise SessionNotFound(str(params[-1]))
        return self._record(conn, row)

    def _select(self, conn: Connection[Any], session_id: str) -> SessionRecord:
        return self._fetch(
            conn,
            f"SELECT {self._COLUMNS} FROM {SCHEMA}.sessions WHERE session_id = %s",
            (session_id,),
        )

    def get(self, session_id: str) -> SessionRecord:
        """The record and its checkpointed steps."""
        with self.tx() as conn:
            return self._select(conn, session_id)

    def events(self, session_id: str, after: int, limit: int = 100) -> list[StoredEvent]:
        """Events numbered after `after`."""
        with self.tx() as conn:
            rows = conn.execute(
                f"SELECT body FROM {SCHEMA}.events WHERE session_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (session_id, after, limit),
            ).fetchall()
        return [StoredEvent.model_validate_json(body) for (body,) in rows]

    def create(self, record: SessionRecord) -> None:
        """Insert the record; the id must be new."""
        spec = record.model_dump_json(
            include={"session_id", "principal", "request", "options", "created_at"}
        )
        try:
            with self.tx() as conn:
                self._insert(conn, record, spec)
        except UniqueViolation as exc:
            raise SessionExists(record.session_id) from exc

    def _insert(self, conn: Connection[Any], record: SessionRecord, spec: str) -> None:
        conn.execute(
            f"INSERT INTO {SCHEMA}.sessions (session_id, owner, spec, status, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                record.session_id,
                record.owner,
                spec,
                record.status.value,
                record.created_at,
                record.updated_at,
            ),
        )

    def owned(self, owner: str, limit: int, before: float | None = None) -> list[SessionRecord]:
        """An owner's sessions, newest first (the `sessions_by_owner` index)."""
        with self.tx() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            rows = cursor.execute(
                f"SELECT {self._COLUMNS} FROM {SCHEMA}.sessions WHERE owner = %s"
                " AND created_at < %s ORDER BY created_at DESC LIMIT %s",
                (owner, float("inf") if before is None else before, limit),
            ).fetchall()
            # A listing, not a checkpoint: the records carry no state (and no steps are read).
            return [self._record(conn, {**row, "state": None}) for row in rows]

    def claim(
        self, session_id: str, worker: str, now: float, lease_seconds: float
    ) -> SessionRecord:
        """Take the lease of an active session whose lease is free, expired or ours."""
        with self.tx() as conn:
            try:
                return self._fetch(
                    conn,
                    f"UPDATE {SCHEMA}.sessions SET status = %s, lease_owner = %s,"
                    " lease_until = %s, version = version + 1, updated_at = %s"
                    " WHERE status = ANY(%s) AND (lease_until < %s OR lease_owner = %s)"
                    f" AND session_id = %s RETURNING {self._COLUMNS}",
                    (
                        Status.RUNNING.value,
                        worker,
                        now + lease_seconds,
                        now,
                        list(ACTIVE),
                        now,
                        worker,
                        session_id,
                    ),
                )
            except SessionNotFound:
                record = self._select(conn, session_id)  # SessionNotFound if it never existed
        if record.status.terminal:
            return record
        raise LeaseHeld(session_id)

    def checkpoint(
        self, record: SessionRecord, state: SessionState, events: list[dict[str, Any]], now: float
    ) -> SessionRecord:
        """Atomically: the conditional record update, then the new steps and events."""
        done_steps = len(record.state.steps) if record.state else 0
        status = Status.RUNNING if state.outcome is None else status_of(state.outcome)
        header = codec(SessionState).dump_json(state, exclude={"steps"}).decode()
        reason = state.reason if state.outcome is not None and state.reason else None
        cancel_guard = "" if state.outcome is not None else " AND NOT cancel_requested"
        with self.tx() as conn:
            updated = conn.execute(
                f"UPDATE {SCHEMA}.sessions SET version = version + 1, status = %s, state = %s,"
                " events_count = %s, updated_at = %s, reason = coalesce(%s, reason)"
                " WHERE session_id = %s AND version = %s AND lease_owner IS NOT DISTINCT FROM %s"
                + cancel_guard,
                (
                    status.value,
                    header,
                    record.events_count + len(events),
                    now,
                    reason,
                    record.session_id,
                    record.version,
                    record.lease_owner,
                ),
            ).rowcount
            if updated == 1:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {SCHEMA}.steps (session_id, idx, body) VALUES (%s, %s, %s)",
                        [
                            (record.session_id, step.index, codec(Step).dump_json(step).decode())
                            for step in state.steps[done_steps:]
                        ],
                    )
                    cursor.executemany(
                        f"INSERT INTO {SCHEMA}.events (session_id, seq, body) VALUES (%s, %s, %s)",
                        [
                            (
                                record.session_id,
                                record.events_count + offset,
                                json.dumps(
                                    {"seq": record.events_count + offset, **event}, default=str
                                ),
                            )
                            for offset, event in enumerate(events, start=1)
                        ],
                    )
        if updated != 1:
            current = self.get(record.session_id)
            if (
                current.cancel_requested
                and current.version == record.version
                and current.lease_owner == record.lease_owner
            ):
                raise CancelRequested(record.session_id)
            raise LeaseLost(record.session_id)
        return record.model_copy(
            update={
                "version": record.version + 1,
                "status": status,
                "state": state,
                "events_count": record.events_count + len(events),
                "updated_at": now,
                "reason": reason or record.reason,
            }
        )

    def release(self, record: SessionRecord) -> None:
        """Free the lease so the next message can continue at once."""
        with self.tx() as conn:
            conn.execute(
                f"UPDATE {SCHEMA}.sessions SET lease_until = 0"
                " WHERE session_id = %s AND lease_owner = %s",
                (record.session_id, record.lease_owner),
            )

    def request_cancel(self, session_id: str, now: float) -> SessionRecord:
        """A queued session is cancelled at once; a running one is flagged for its worker."""
        with self.tx() as conn:
            conn.execute(
                f"UPDATE {SCHEMA}.sessions SET status = CASE WHEN status = %s THEN %s"
                " ELSE status END, reason = CASE WHEN status = %s THEN %s ELSE reason END,"
                " cancel_requested = true, updated_at = %s"
                " WHERE session_id = %s AND status = ANY(%s)",
                (
                    Status.QUEUED.value,
                    Status.CANCELLED.value,
                    Status.QUEUED.value,
                    "cancelled by the user before it started",
                    now,
                    session_id,
                    list(ACTIVE),
                ),
            )
            return self._select(conn, session_id)

    def fail(self, session_id: str, reason: str, now: float) -> None:
        """Mark an active session failed (its message reached the dead-letter queue)."""
        with self.tx() as conn:
            conn.execute(
                f"UPDATE {SCHEMA}.sessions SET status = %s, reason = %s, updated_at = %s,"
                " lease_until = 0 WHERE session_id = %s AND status = ANY(%s)",
                (Status.FAILED.value, reason, now, session_id, list(ACTIVE)),
            )


# Sends in this process wake this process's pollers at once (every queue object of a name
# shares them); other processes' sends are found by polling.
_SENT = threading.Condition()
_SENDS: dict[str, int] = {}


class PostgresQueue(_Db):
    """`PullQueue` in the `lockgate_runtime.queue` table, with SQS's redrive semantics."""

    def __init__(
        self,
        connections: ConnectionPool[Connection[Any]],
        name: str = "sessions",
        *,
        visibility_seconds: float = 30.0,
        max_receive_count: int = 3,
        dead_letter_name: str | None = "dead-letters",
        poll_seconds: float = 0.25,
        clock: Any = time.time,
    ) -> None:
        super().__init__(connections)
        self.name, self.visibility_seconds = name, visibility_seconds
        self.max_receive_count, self.dead_letter_name = max_receive_count, dead_letter_name
        self.poll_seconds, self.clock = poll_seconds, clock

    def send(self, session_id: str) -> None:
        """Insert a message, visible at once; wakes this process's waiting pollers."""
        now = self.clock()
        with self.tx() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.queue (queue, body, sent_at, visible_at)"
                " VALUES (%s, %s, %s, %s)",
                (self.name, message_body(session_id), now, now),
            )
        with _SENT:
            _SENDS[self.name] = _SENDS.get(self.name, 0) + 1
            _SENT.notify_all()

    def _take(self, max_messages: int) -> list[Message]:
        now = self.clock()
        with self.tx() as conn:
            if self.dead_letter_name is not None:
                conn.execute(
                    f"UPDATE {SCHEMA}.queue SET queue = %s, receive_count = 0, visible_at = %s"
                    " WHERE queue = %s AND visible_at <= %s AND receive_count >= %s",
                    (self.dead_letter_name, now, self.name, now, self.max_receive_count),
                )
            rows = conn.execute(
                f"WITH picked AS (SELECT id FROM {SCHEMA}.queue WHERE queue = %s"
                " AND visible_at <= %s ORDER BY visible_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                f" UPDATE {SCHEMA}.queue q SET receive_count = q.receive_count + 1,"
                " visible_at = %s, receipt = %s || q.id FROM picked WHERE q.id = picked.id"
                " RETURNING q.id, q.receipt, q.body, q.receive_count, q.sent_at",
                (
                    self.name,
                    now,
                    max_messages,
                    now + self.visibility_seconds,
                    f"{uuid.uuid4().hex}-",
                ),
            ).fetchall()
        return [
            Message(
                message_id=str(row[0]),
                receipt=row[1],
                body=row[2],
                receive_count=row[3],
                sent_at=row[4],
            )
            for row in sorted(rows)
        ]

    def receive(self, max_messages: int, wait_seconds: float) -> list[Message]:
        """Visible messages, waiting up to `wait_seconds` (woken by this process's sends,
        polling for other processes')."""
        deadline = time.monotonic() + wait_seconds
        while True:
            with _SENT:
                seen = _SENDS.get(self.name, 0)
            messages = self._take(max_messages)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with _SENT:
                if _SENDS.get(self.name, 0) == seen:
                    _SENT.wait(timeout=min(remaining, self.poll_seconds))

    def delete(self, message: Message) -> None:
        """Delete by receipt: a message received again since (a redelivery) is kept."""
        with self.tx() as conn:
            conn.execute(
                f"DELETE FROM {SCHEMA}.queue WHERE id = %s AND receipt = %s",
                (int(message.message_id), message.receipt),
            )

    def dead_letters(self) -> PostgresQueue:
        """The dead-letter queue (itself without one)."""
        if self.dead_letter_name is None:
            raise ValueError("this queue has no dead-letter queue configured")
        return PostgresQueue(
            self.connections,
            self.dead_letter_name,
            visibility_seconds=self.visibility_seconds,
            max_receive_count=self.max_receive_count,
            dead_letter_name=None,
            poll_seconds=self.poll_seconds,
            clock=self.clock,
        )

    def recover(self) -> int:
        """After a restart of the only poller of this database: every in-flight message is
        visible again, every lease of an active session is free, and an active session with
        no message (its enqueue never happened) gets one. Returns the sessions re-enqueued."""
        now = self.clock()
        with self.tx() as conn:
            conn.execute(
                f"UPDATE {SCHEMA}.queue SET visible_at = %s WHERE queue = %s AND visible_at > %s",
                (now, self.name, now),
            )
            conn.execute(
                f"UPDATE {SCHEMA}.sessions SET lease_until = 0 WHERE status = ANY(%s)",
                (list(ACTIVE),),
            )
            active = conn.execute(
                f"SELECT session_id FROM {SCHEMA}.sessions WHERE status = ANY(%s)",
                (list(ACTIVE),),
            ).fetchall()
            queued = {
                body
                for (body,) in conn.execute(
                    f"SELECT body FROM {SCHEMA}.queue WHERE queue = %s", (self.name,)
                ).fetchall()
            }
        missing = [sid for (sid,) in active if message_body(sid) not in queued]
        for session_id in missing:
            self.send(session_id)
        return len(missing)
