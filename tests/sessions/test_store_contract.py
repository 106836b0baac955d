"""One contract for every session store and work queue: memory, PostgreSQL (a real server)
and the cloud's DynamoDB and SQS (moto's server). An adapter that drifts fails here."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from local.cloud import REGION, provision_cloud
from orchestrator.sessions.dynamodb import DynamoSessions
from orchestrator.sessions.memory import MemoryQueue, MemorySessions
from orchestrator.sessions.ports import PullQueue, SessionRepository, session_id_of
from orchestrator.sessions.postgres import PostgresQueue, PostgresSessions, install, pool
from orchestrator.sessions.record import (
    CancelRequested,
    LeaseHeld,
    LeaseLost,
    SessionExists,
    SessionNotFound,
    SessionOptions,
    SessionRecord,
    Status,
)
from orchestrator.sessions.sqs import SqsQueue
from orchestrator.types import FinalAnswer, ModelTurn, Outcome, SessionState, Step, ToolCall
from tests.conftest import Server
from tests.fakes import ALICE

BACKENDS = ["memory", "postgres", "dynamodb"]


@pytest.fixture
def runtime_db(pg_server: Server) -> Iterator[str]:
    name = f"lockgate_rt_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        install(conn)
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def stores(
    request: pytest.FixtureRequest, moto_endpoint: str
) -> Iterator[tuple[SessionRepository, PullQueue, Any]]:
    """(repository, queue with max_receive_count=2 and a 1 s visibility, raw handle)."""
    if request.param == "memory":
        yield MemorySessions(), MemoryQueue(visibility_seconds=1, max_receive_count=2), None
    elif request.param == "postgres":
        url = request.getfixturevalue("runtime_db")
        connections = pool(url, size=4)
        queue = PostgresQueue(connections, visibility_seconds=1, max_receive_count=2)
        yield PostgresSessions(connections), queue, url
        connections.close()
    else:
        cloud = provision_cloud(moto_endpoint, max_receive_count=2, visibility_seconds=1)
        dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=REGION)
        sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
        yield (
            DynamoSessions(cloud.table, dynamodb),
            SqsQueue(cloud.queue_url, sqs, cloud.dlq_url),
            None,
        )


def new_record(session_id: str | None = None, now: float = 1000.0) -> SessionRecord:
    return SessionRecord(
        session_id=session_id or secrets.token_hex(8),
        principal=ALICE,
        request="book Ada to New York",
        options=SessionOptions(max_steps=5),
        created_at=now,
        updated_at=now,
    )


def step(index: int, tool: str = "customer_lookup") -> Step:
    call = ToolCall(call_id=f"c{index}", tool=tool, arguments='{"customer_id": "C-1001"}')
    return Step(index=index, turn=ModelTurn(decision=call, model_id="scripted:demo"))


def state_for(record: SessionRecord, steps: int, *, final: bool = False) -> SessionState:
    state = SessionState(
        session_id=record.session_id, request=record.request, principal=record.principal
    )
    done = tuple(step(i) for i in range(steps))
    if final:
        answer = Step(index=steps, turn=ModelTurn(decision=FinalAnswer(text="booked")))
        return dataclasses.replace(
            state, steps=(*done, answer), outcome=Outcome.COMPLETED, answer="booked"
        )
    return dataclasses.replace(state, steps=done)


def events(*kinds: str) -> list[dict[str, Any]]:
    return [{"step": i, "kind": kind, "data": {"n": i}} for i, kind in enumerate(kinds)]


def test_create_then_get_returns_the_record(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    stored = repo.get(record.session_id)
    assert stored.session_id == record.session_id
    assert stored.principal == ALICE
    assert stored.request == record.request
    assert stored.options == record.options
    assert stored.status is Status.QUEUED
    assert stored.state is None
    assert stored.events_count == 0


def test_an_owners_sessions_are_listed_newest_first(stores: Any) -> None:
    repo, _, _ = stores
    records = [new_record(now=1000.0 + i) for i in range(4)]
    for record in records:
        repo.create(record)
    claimed = repo.claim(records[0].session_id, "w1", 1010.0, 30)
    repo.checkpoint(claimed, state_for(records[0], 1, final=True), events("final"), 1011.0)
    listed = repo.owned(records[0].owner, limit=3)
    assert [r.session_id for r in listed] == [r.session_id for r in reversed(records)][:3]
    older = repo.owned(records[0].owner, limit=10, before=listed[-1].created_at)
    assert [r.session_id for r in older] == [records[0].session_id]
    assert older[0].status is Status.COMPLETED
    assert repo.owned("globex#carol", limit=10) == []


def test_a_missing_session_is_not_found(stores: Any) -> None:
    repo, _, _ = stores
    with pytest.raises(SessionNotFound):
        repo.get("nope")
    with pytest.raises(SessionNotFound):
        repo.claim("nope", "w1", 1000.0, 30)


def test_an_id_is_created_once(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    with pytest.raises(SessionExists):
        repo.create(record)


def test_checkpoints_store_steps_state_and_numbered_events(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 30)
    assert claimed.status is Status.RUNNING
    assert claimed.lease_owner == "w1"

    first = repo.checkpoint(
        claimed, state_for(record, 1), events("session_started", "model_proposed"), 1001.0
    )
    second = repo.checkpoint(first, state_for(record, 2), events("tool_result"), 1002.0)
    assert second.version == claimed.version + 2

    stored = repo.get(record.session_id)
    assert stored.state is not None
    assert [s.index for s in stored.state.steps] == [0, 1]
    assert stored.state.steps[1].turn.decision == step(1).turn.decision
    assert stored.events_count == 3
    listed = repo.events(record.session_id, after=0)
    assert [(e.seq, e.kind) for e in listed] == [
        (1, "session_started"),
        (2, "model_proposed"),
        (3, "tool_result"),
    ]
    assert [e.seq for e in repo.events(record.session_id, after=1, limit=1)] == [2]


def test_a_final_checkpoint_ends_the_session(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 30)
    repo.checkpoint(claimed, state_for(record, 2, final=True), events("final"), 1001.0)
    stored = repo.get(record.session_id)
    assert stored.status is Status.COMPLETED
    assert stored.state is not None and stored.state.answer == "booked"
    # A terminal session is handed back as it is, with no lease taken.
    again = repo.claim(record.session_id, "w2", 1002.0, 30)
    assert again.status is Status.COMPLETED
    assert again.lease_owner == "w1"


def test_a_live_lease_is_held_and_an_expired_one_is_taken(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    first = repo.claim(record.session_id, "w1", 1000.0, 30)
    with pytest.raises(LeaseHeld):
        repo.claim(record.session_id, "w2", 1010.0, 30)
    assert repo.claim(record.session_id, "w1", 1010.0, 30).lease_owner == "w1"  # ours again
    taken = repo.claim(record.session_id, "w2", 1100.0, 30)
    assert taken.lease_owner == "w2"
    # The first worker's checkpoint is refused: its lease is gone.
    with pytest.raises(LeaseLost):
        repo.checkpoint(first, state_for(record, 1), events("model_proposed"), 1101.0)
    assert repo.get(record.session_id).state is None


def test_a_stale_version_is_refused(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 30)
    repo.checkpoint(claimed, state_for(record, 1), events("model_proposed"), 1001.0)
    with pytest.raises(LeaseLost):
        repo.checkpoint(claimed, state_for(record, 1), events("model_proposed"), 1002.0)
    assert repo.get(record.session_id).events_count == 1


def test_release_frees_the_lease_for_another_worker(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 300)
    repo.release(claimed)
    assert repo.claim(record.session_id, "w2", 1001.0, 300).lease_owner == "w2"


def test_cancel_a_queued_session_at_once(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    cancelled = repo.request_cancel(record.session_id, 1001.0)
    assert cancelled.status is Status.CANCELLED
    assert repo.get(record.session_id).status is Status.CANCELLED
    assert repo.claim(record.session_id, "w1", 1002.0, 30).status is Status.CANCELLED


def test_cancel_a_running_session_refuses_its_next_checkpoint(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 30)
    flagged = repo.request_cancel(record.session_id, 1001.0)
    assert flagged.status is Status.RUNNING and flagged.cancel_requested
    with pytest.raises(CancelRequested):
        repo.checkpoint(claimed, state_for(record, 1), events("model_proposed"), 1002.0)
    # A terminal checkpoint (the worker recording the cancellation) still goes through.
    current = repo.get(record.session_id)
    stopped = dataclasses.replace(
        state_for(record, 0), outcome=Outcome.CANCELLED, reason="cancelled by the user"
    )
    repo.checkpoint(current, stopped, events("stopped"), 1003.0)
    assert repo.get(record.session_id).status is Status.CANCELLED


def test_cancel_leaves_a_finished_session_as_it_is(stores: Any) -> None:
    repo, _, _ = stores
    record = new_record()
    repo.create(record)
    claimed = repo.claim(record.session_id, "w1", 1000.0, 30)
    repo.checkpoint(claimed, state_for(record, 1, final=True), events("final"), 1001.0)
    assert repo.request_cancel(record.session_id, 1002.0).status is Status.COMPLETED


def test_fail_marks_only_an_active_session(stores: Any) -> None:
    repo, _, _ = stores
    active, done = new_record(), new_record()
    for record in (active, done):
        repo.create(record)
    claimed = repo.claim(done.session_id, "w1", 1000.0, 30)
    repo.checkpoint(claimed, state_for(done, 1, final=True), events("final"), 1001.0)
    repo.fail(active.session_id, "given up", 1002.0)
    repo.fail(done.session_id, "given up", 1002.0)
    assert repo.get(active.session_id).status is Status.FAILED
    assert repo.get(active.session_id).reason == "given up"
    assert repo.get(done.session_id).status is Status.COMPLETED


def test_concurrent_claims_give_the_lease_to_exactly_one(stores: Any) -> None:
    repo, _, _ = stores
    if isinstance(repo, DynamoSessions):
        pytest.skip("moto's server does not make conditional updates atomic across threads")
    record = new_record()
    repo.create(record)
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def claim(worker: str) -> None:
        barrier.wait()
        try:
            repo.claim(record.session_id, worker, 1000.0, 30)
            winners.append(worker)
        except LeaseHeld:
            pass

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert repo.get(record.session_id).lease_owner == winners[0]


# --- the work queue ----------------------------------------------------------------------


def test_a_sent_message_is_received_once_then_deleted(stores: Any) -> None:
    _, queue, _ = stores
    queue.send("s-1")
    received = queue.receive(10, 1)
    assert [session_id_of(m.body) for m in received] == ["s-1"]
    assert received[0].receive_count == 1
    assert queue.receive(10, 0) == []  # invisible while being handled
    queue.delete(received[0])
    time.sleep(1.2)
    assert queue.receive(10, 0) == []


def test_an_unhandled_message_is_redelivered_then_dead_lettered(stores: Any) -> None:
    _, queue, _ = stores
    queue.send("s-2")
    counts = []
    for _ in range(2):
        received = queue.receive(10, 2)
        assert [session_id_of(m.body) for m in received] == ["s-2"]
        counts.append(received[0].receive_count)
        time.sleep(1.2)  # the visibility timeout passes without a delete
    assert counts == [1, 2]
    assert queue.receive(10, 0) == []  # received max_receive_count times: moved on
    dead = queue.dead_letters().receive(10, 2)
    assert [session_id_of(m.body) for m in dead] == ["s-2"]


def test_concurrent_receivers_never_get_the_same_message(stores: Any) -> None:
    _, queue, _ = stores
    if isinstance(queue, SqsQueue):
        pytest.skip("SQS delivers at least once; Lockgate's leases cover duplicates there")
    for i in range(20):
        queue.send(f"s-{i}")
    got: list[str] = []
    lock = threading.Lock()

    def drain() -> None:
        while batch := queue.receive(3, 0.2):
            with lock:
                got.extend(session_id_of(m.body) for m in batch)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(f"s-{i}" for i in range(20))


def test_a_stale_receipt_does_not_delete_a_redelivered_message(stores: Any) -> None:
    _, queue, _ = stores
    if isinstance(queue, SqsQueue):
        pytest.skip("moto accepts a stale receipt handle")
    queue.send("s-3")
    first = queue.receive(1, 1)[0]
    time.sleep(1.2)
    queue.receive(1, 1)  # redelivered to a second worker, which is still at it
    queue.delete(first)  # the first worker finishes late: its receipt is stale
    time.sleep(1.2)
    # Still there: after its second receive it moves to the dead-letter queue.
    assert queue.receive(1, 0) == []
    assert [session_id_of(m.body) for m in queue.dead_letters().receive(1, 1)] == ["s-3"]
