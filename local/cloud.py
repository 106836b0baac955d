"""The local cloud: where `lockgate serve` keeps sessions and work, and the pollers that do
what Lambda's SQS event source does.

Two state backends, the same handlers over both:
- `postgres` (the default): sessions, checkpoints, events and the work queue in the local
  PostgreSQL, in the runtime's own schema and role. A restart loses nothing: queued and
  running sessions resume from their last checkpoint.
- `moto`: DynamoDB and SQS on moto's server, the cloud's own adapters over HTTP. A test
  double, kept as the baseline of `bench/api_throughput.py`; nothing survives a restart.

The pollers receive a batch, build the SQS event Lambda would, call the handler, and delete
the messages it did not report as failed; several worker threads poll at once, as several
Lambda environments would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from orchestrator.sessions.ports import Message, PullQueue

REGION = "us-east-1"
RUNTIME_ROLE = "lockgate_runtime"
Handler = Callable[[dict[str, Any], Any], Any]
StateBackend = Literal["postgres", "moto"]


@dataclass
class LocalContext:
    """What a Lambda context offers the handlers (Powertools reads these). `stopping` makes
    the remaining time zero: the worker then checkpoints, frees the lease and re-enqueues."""

    budget_seconds: float = 900.0
    function_name: str = "lockgate-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:lockgate-local"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    stopping: threading.Event | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of this invocation's budget."""
        if self.stopping is not None and self.stopping.is_set():
            return 0
        return int((self.budget_seconds - (time.monotonic() - self.started)) * 1000)


def sqs_event(messages: list[Message], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receive_count),
                    "SentTimestamp": str(int(m.sent_at * 1000)),
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePoller:
    """Lambda's SQS event source, locally: receive, invoke, delete what succeeded."""

    def __init__(
        self,
        queue: PullQueue,
        handler: Handler,
        *,
        batch: int = 1,
        arn: str = "arn:aws:sqs:us-east-1:000000000000:lockgate-local",
        stopping: threading.Event | None = None,
    ) -> None:
        self.queue, self.handler, self.batch, self.arn = queue, handler, batch, arn
        self.stopping = stopping

    def poll_once(self, wait_seconds: float = 0, context: Any = None) -> int:
        """Handle one batch; returns how many messages were received."""
        received = self.queue.receive(self.batch, wait_seconds)
        if not received:
            return 0
        context = context or LocalContext(stopping=self.stopping)
        response = self.handler(sqs_event(received, self.arn), context)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        for message in received:
            if message.message_id not in failed:
                self.queue.delete(message)
        return len(received)


class Pollers:
    """Worker and dead-letter pollers on background threads, stopped together."""

    def __init__(
        self, work: PullQueue, worker: Handler, dead_letter: Handler, *, workers: int = 4
    ) -> None:
        self.stopping = threading.Event()
        self.work = QueuePoller(work, worker, stopping=self.stopping)
        self.dead = QueuePoller(work.dead_letters(), dead_letter, stopping=self.stopping)
        self._threads = [
            threading.Thread(target=self._loop, args=(self.work,), daemon=True, name=f"worker-{i}")
            for i in range(workers)
        ]
        self._threads.append(
            threading.Thread(target=self._loop, args=(self.dead,), daemon=True, name="dead-letters")
        )

    def _loop(self, poller: QueuePoller) -> None:
        while not self.stopping.is_set():
            try:
                poller.poll_once(wait_seconds=0.25)
            except Exception:  # a poller must survive whatever one batch did; the handler logged it
                time.sleep(0.25)

    @contextlib.contextmanager
    def running(self, stop_seconds: float = 1.5) -> Iterator[None]:
        """Poll for the block. On exit a session in progress is checkpointed at its current
        step and re-enqueued (its worker sees no time left), so stopping is quick and loses
        nothing."""
        for thread in self._threads:
            thread.start()
        try:
            yield
        finally:
            self.stopping.set()
            deadline = time.monotonic() + stop_seconds
            for thread in self._threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))


# --- the postgres backend ----------------------------------------------------------------


@dataclass(frozen=True)
class LocalState:
    """Where `lockgate serve`'s sessions and queue are: the environment the handlers read."""

    backend: StateBackend
    variables: dict[str, str]

    def environment(self) -> dict[str, str]:
        """The variables the handlers read (as the CDK stack sets them in AWS)."""
        return dict(self.variables)


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block; restore them after."""
    previous = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class StateInUse(RuntimeError):
    """Another `lockgate serve` owns this database's sessions and queue."""


@contextlib.contextmanager
def postgres_state(
    admin_url: str, runtime_password: str, *, visibility_seconds: float = 900.0
) -> Iterator[LocalState]:
    """The runtime's schema and role on the local PostgreSQL, owned by this process for the
    block (a session-level advisory lock, released if the process dies), with every session
    that was queued or running when the last owner stopped made ready to resume."""
    from local.stack import role_url
    from orchestrator.sessions.postgres import OWNER_LOCK, PostgresQueue, install, pool

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNTIME_ROLE,))
        verb = "ALTER" if exists.fetchone() else "CREATE"
        conn.execute(
            psycopg.sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.SQL(verb),
                psycopg.sql.Identifier(RUNTIME_ROLE),
                psycopg.sql.Literal(runtime_password),
            )
        )
        install(conn, RUNTIME_ROLE)
    url = role_url(admin_url, RUNTIME_ROLE, runtime_password)
    owner = psycopg.connect(url, autocommit=True)
    try:
        locked = owner.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_LOCK,)).fetchone()
        if not locked or not locked[0]:
            raise StateInUse("another `lockgate serve` is running on this database; stop it first")
        connections = pool(url, size=2)
        try:
            PostgresQueue(connections, visibility_seconds=visibility_seconds).recover()
        finally:
            connections.close()
        yield LocalState(
            "postgres",
            {
                "LOCKGATE_SESSIONS_BACKEND": "postgres",
                "LOCKGATE_SESSIONS_DATABASE_URL": url,
                "LOCKGATE_VISIBILITY_SECONDS": str(visibility_seconds),
            },
        )
    finally:
        owner.close()


# --- the moto backend --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        os.environ.setdefault(name, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class LocalCloud:
    """Endpoint, table and queues of a local moto server."""

    endpoint: str
    table: str
    queue_url: str
    dlq_url: str

    def client(self, service: str) -> Any:
        """A boto3 client for this endpoint."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def environment(self) -> dict[str, str]:
        """The variables the handlers read (as the CDK stack sets them in AWS)."""
        return {
            "LOCKGATE_SESSIONS_BACKEND": "dynamodb",
            "LOCKGATE_TABLE_NAME": self.table,
            "LOCKGATE_QUEUE_URL": self.queue_url,
            "LOCKGATE_DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "LOCKGATE_AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }


def provision_cloud(
    endpoint: str, *, max_receive_count: int = 3, visibility_seconds: int = 30
) -> LocalCloud:
    """Create the table, the queue and its dead-letter queue on the endpoint."""
    import boto3

    from orchestrator.sessions.dynamodb import create_table

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    table = f"lockgate-sessions-{suffix}"
    create_table(dynamodb, table)
    dlq_url = sqs.create_queue(QueueName=f"lockgate-dead-letters-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"lockgate-sessions-{suffix}",
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return LocalCloud(endpoint, table, queue_url, dlq_url)


@contextlib.contextmanager
def moto_state(max_receive_count: int = 3, visibility_seconds: int = 30) -> Iterator[LocalState]:
    """moto's server with the table and queues (the `--state moto` baseline)."""
    with moto_server() as endpoint:
        cloud = provision_cloud(
            endpoint, max_receive_count=max_receive_count, visibility_seconds=visibility_seconds
        )
        yield LocalState("moto", cloud.environment())
