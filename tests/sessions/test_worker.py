"""The durable worker: crash and redelivery, two workers on one message, poison messages to
the dead-letter queue, sessions longer than one invocation, cancellation while running."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from local.cloud import LocalContext
from local.models import local_model
from orchestrator.ports import Model, ModelRequest
from orchestrator.sessions.dynamodb import DynamoSessions
from orchestrator.sessions.record import LeaseHeld, LeaseLost, SessionRecord
from orchestrator.types import ModelTurn, SessionState
from tests.conftest import Database
from tests.sessions.conftest import Stack, replace_worker


class Crash(Exception):
    """The worker process dies here (nothing after this line runs)."""


class CrashOnceBeforeCheckpoint(DynamoSessions):
    """Dies after the step with `index` ran (its tool wrote) but before it was checkpointed."""

    def __init__(self, repo: DynamoSessions, index: int) -> None:
        super().__init__(repo.table, repo.client)
        self.index, self.crashed = index, False

    def checkpoint(
        self, record: SessionRecord, state: SessionState, events: list[dict[str, Any]], now: float
    ) -> SessionRecord:
        if not self.crashed and len(state.steps) == self.index + 1:
            self.crashed = True
            raise Crash
        return super().checkpoint(record, state, events, now)


def test_a_crash_between_a_write_and_its_checkpoint_writes_once(
    stack: Stack, database: Database
) -> None:
    # Step 3 (index 2) of the demo books the flight.
    repo = stack.worker.repo
    assert isinstance(repo, DynamoSessions)
    replace_worker(stack, repo=CrashOnceBeforeCheckpoint(repo, index=2), worker_id="first")
    session_id = stack.create()

    assert stack.work.poll_once() == 1  # the worker dies: the message is not deleted
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]  # the write happened
    record = repo.get(session_id)
    assert record.state is not None and len(record.state.steps) == 2  # ... but was not checkpointed

    replace_worker(stack, repo=repo, worker_id="second")  # a new worker after redelivery
    time.sleep(1.2)  # visibility timeout and lease (1 s each) expire
    assert stack.drain() == 1

    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "completed"
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]
    booking = repo.get(session_id).state.steps[2]  # type: ignore[union-attr]
    assert booking.observation is not None and booking.observation.replayed


class SlowModel:
    """Wraps a model and holds each decision long enough for two workers to overlap."""

    def __init__(self, inner: Model, delay: float) -> None:
        self.inner, self.delay = inner, delay

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def decide(self, request: ModelRequest) -> ModelTurn:
        time.sleep(self.delay)
        return self.inner.decide(request)


def test_two_workers_on_one_message_never_duplicate_a_step(
    stack: Stack, database: Database
) -> None:
    session_id = stack.create()
    first = stack.worker
    original_build = first.build

    def slow_build(record: SessionRecord, store: Any, events: Any) -> Any:
        orchestrator = original_build(record, store, events)
        orchestrator.model = SlowModel(orchestrator.model, 0.05)
        return orchestrator

    # A lease much longer than the session, so the second worker finds it held.
    workers = [
        replace_worker(stack, build=slow_build, worker_id=f"w{i}", lease_seconds=60) for i in (1, 2)
    ]
    results: list[str] = []

    def run(worker: Any) -> None:
        try:
            results.append(worker.advance(session_id, lambda: 900.0))
        except (LeaseHeld, LeaseLost):
            results.append("backed off")
        except Exception as exc:  # recorded, so that the assertion shows it
            results.append(repr(exc))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The second worker backs off at its claim (LeaseHeld) or, when both claims raced through
    # the local endpoint's condition check, at its first checkpoint (LeaseLost). Either way no
    # step is written twice and the booking happens once.
    assert sorted(results) == ["backed off", "done"]
    state = first.repo.get(session_id).state
    assert state is not None and state.outcome is not None
    assert [s.index for s in state.steps] == list(range(len(state.steps)))
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]


def test_a_poison_message_ends_in_the_dead_letter_queue_and_fails_the_session(
    stack: Stack, database: Database
) -> None:
    def models(model_id: str) -> Model:
        if model_id == "poison":
            raise RuntimeError("this model cannot be built")
        return local_model(model_id)

    from orchestrator import wiring

    worker = wiring.worker(wiring.settings(), invoker=stack.invoker, models=models)
    stack.use(worker)
    session_id = stack.create(model="poison")

    for _ in range(3):  # maxReceiveCount is 2: the third receive moves it to the DLQ
        stack.work.poll_once()
        time.sleep(1.1)
    assert stack.work.poll_once() == 0
    assert stack.dead.poll_once() == 1

    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "failed"
    assert "2 times" in view["reason"] or "given up" in view["reason"]
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_a_long_session_continues_in_the_next_invocation(stack: Stack, database: Database) -> None:
    session_id = stack.create()
    original_build = stack.worker.build

    def slow_build(record: SessionRecord, store: Any, events: Any) -> Any:
        orchestrator = original_build(record, store, events)
        orchestrator.model = SlowModel(orchestrator.model, 0.15)
        return orchestrator

    # Invocations with 2 s and a 1.5 s reserve: a few 0.15 s steps fit in each, not all five.
    replace_worker(stack, build=slow_build, reserve_seconds=1.5)
    invocations = 0
    while stack.work.poll_once(context=LocalContext(budget_seconds=2.0)) > 0:
        invocations += 1
        assert invocations < 20

    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "completed"
    assert invocations >= 2
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]
    _, _, page = stack.api("GET", f"/sessions/{session_id}/events")
    assert [e["kind"] for e in page["events"]].count("final") == 1


def test_cancelling_a_running_session_stops_it_before_the_next_step(
    stack: Stack, database: Database
) -> None:
    session_id = stack.create()
    original_build = stack.worker.build

    def cancel_after_lookup(record: SessionRecord, store: Any, events: Any) -> Any:
        orchestrator = original_build(record, store, events)
        inner = orchestrator.model

        class CancelsAfterFirstStep:
            model_id = inner.model_id

            def decide(self, request: ModelRequest) -> ModelTurn:
                if len(request.exchanges) == 1:
                    stack.api("POST", f"/sessions/{session_id}/cancel")
                return inner.decide(request)

        orchestrator.model = CancelsAfterFirstStep()
        return orchestrator

    replace_worker(stack, build=cancel_after_lookup)
    stack.drain()

    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "cancelled"
    assert view["steps"] == 1
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


@pytest.mark.parametrize("body", ["not json", '{"id": 1}'])
def test_a_malformed_message_fails_its_item_not_the_batch(stack: Stack, body: str) -> None:
    sqs = stack.cloud.client("sqs")
    sqs.send_message(QueueUrl=stack.cloud.queue_url, MessageBody=body)
    session_id = stack.create()
    stack.work.poll_once()
    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "completed"


def test_metrics_count_each_event_once_per_session(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    import json as jsonlib

    session_id = stack.create()
    capsys.readouterr()
    stack.drain()
    totals: dict[str, float] = {}
    outcomes: list[str] = []
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = jsonlib.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "Lockgate"
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
        if "outcome" in blob:
            outcomes.append(blob["outcome"])
    assert totals["Steps"] == 5
    assert totals["ToolCalls"] == 3
    assert totals["ValidationFailures"] == 1
    assert totals["InputTokens"] > 0
    assert totals["Sessions"] == 1
    assert outcomes == ["completed"]
    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert totals["InputTokens"] == view["usage"]["input_tokens"]
