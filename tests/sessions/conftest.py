"""The asynchronous sessions stack on real parts: moto's server for SQS and DynamoDB (the
same boto3 adapters as AWS), the real API, worker and dead-letter handlers, in-process tools
on real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.auth import claims_for
from local.cli import DEMO_SCRIPT
from local.cloud import LocalCloud, QueuePoller, moto_server, provision_cloud
from local.gateway import api_event, call_api
from local.models import local_model
from local.users import LOCAL_USERS
from orchestrator import wiring
from orchestrator.handlers import api, dlq, websocket
from orchestrator.handlers import worker as worker_handler
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.sessions.sqs import SqsQueue
from orchestrator.sessions.worker import Worker
from tests.conftest import Database

DEMO_MODEL = f"scripted:{DEMO_SCRIPT}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@dataclass
class Stack:
    cloud: LocalCloud
    worker: Worker
    invoker: InProcessInvoker
    work: QueuePoller
    dead: QueuePoller

    def api(
        self,
        method: str,
        path: str,
        user: str = "alice",
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        event = api_event(
            method,
            path,
            claims=claims if claims is not None else claims_for(LOCAL_USERS[user]),
            body=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
            query=query,
        )
        return call_api(event)

    def create(self, request: str = "book it", user: str = "alice", **options: Any) -> str:
        status, _, body = self.api(
            "POST", "/sessions", user, {"request": request, "options": options}
        )
        assert status == 202, body
        return str(body["session_id"])

    def drain(self) -> int:
        """Run the worker until the queue is empty; returns messages handled."""
        handled = 0
        while (n := self.work.poll_once()) > 0:
            handled += n
        return handled

    def use(self, worker: Worker) -> None:
        self.worker = worker
        worker_handler.use(worker)


@pytest.fixture
def stack(
    database: Database, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    cloud = provision_cloud(moto_endpoint, max_receive_count=2, visibility_seconds=1)
    for key, value in cloud.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCKGATE_MODEL_ID", DEMO_MODEL)
    monkeypatch.setenv("LOCKGATE_ALLOWED_MODELS", json.dumps(["poison"]))
    monkeypatch.setenv("LOCKGATE_LEASE_SECONDS", "1")
    monkeypatch.setenv("LOCKGATE_MAX_WAIT_SECONDS", "10")
    wiring.settings.cache_clear()
    api._service.cache_clear()
    websocket._connections.cache_clear()
    websocket._connections.cache_clear()
    invoker = InProcessInvoker(database.tool_settings())
    worker = wiring.worker(wiring.settings(), invoker=invoker, models=local_model)
    worker_handler.use(worker)
    queue = SqsQueue(cloud.queue_url, cloud.client("sqs"), cloud.dlq_url)
    yield Stack(
        cloud,
        worker,
        invoker,
        QueuePoller(queue, worker_handler.handler, batch=5),
        QueuePoller(queue.dead_letters(), dlq.handler, batch=5),
    )
    invoker.close()
    worker_handler.use(None)
    wiring.settings.cache_clear()
    api._service.cache_clear()
    websocket._connections.cache_clear()


def replace_worker(stack: Stack, **changes: Any) -> Worker:
    worker = dataclasses.replace(stack.worker, **changes)
    stack.use(worker)
    return worker
