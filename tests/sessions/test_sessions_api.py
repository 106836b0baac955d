"""Sessions as resources: 202 + queue, status, events, cancel, ownership, validation."""

from __future__ import annotations

import threading
import time

from tests.conftest import Database
from tests.sessions.conftest import Stack


def test_create_queue_run_and_read_back(stack: Stack, database: Database) -> None:
    status, headers, body = stack.api("POST", "/sessions", body={"request": "book Ada to New York"})
    assert status == 202
    session_id = body["session_id"]
    assert headers["Location"] == f"/sessions/{session_id}"
    assert body["status"] == "queued"

    assert stack.drain() == 1

    status, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert status == 200
    assert view["status"] == "completed"
    assert view["outcome"] == "completed"
    assert view["steps"] == 5
    assert view["usage"]["input_tokens"] > 0
    assert database.rows("SELECT count(*) FROM bookings WHERE customer_id = 'C-1001'") == [(1,)]

    status, _, page = stack.api("GET", f"/sessions/{session_id}/events")
    kinds = [e["kind"] for e in page["events"]]
    assert kinds[0] == "session_started"
    assert kinds[-1] == "final"
    assert kinds.count("validation_failed") == 1
    assert kinds.count("tool_result") == 3
    assert [e["seq"] for e in page["events"]] == list(range(1, len(kinds) + 1))

    _, _, rest = stack.api("GET", f"/sessions/{session_id}/events", query={"after": "3"})
    assert [e["seq"] for e in rest["events"]] == list(range(4, len(kinds) + 1))


def test_sessions_are_visible_only_to_their_owner(stack: Stack) -> None:
    session_id = stack.create()
    for user in ("bob", "carol"):  # same tenant, other user; other tenant
        for method, path in (
            ("GET", f"/sessions/{session_id}"),
            ("GET", f"/sessions/{session_id}/events"),
            ("POST", f"/sessions/{session_id}/cancel"),
        ):
            status, _, body = stack.api(method, path, user)
            assert status == 404
            assert "session_id" not in body
    status, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert (status, view["status"]) == (200, "queued")


def test_bad_bodies_get_field_errors(stack: Stack) -> None:
    for body in (
        {},
        {"request": ""},
        {"request": "x", "principal": {"tenant_id": "globex"}},
        {"request": "x", "options": {"max_steps": 0}},
        {"request": "x", "options": {"max_usd": -1}},
    ):
        status, _, response = stack.api("POST", "/sessions", body=body)
        assert status == 422, body
        assert response["errors"] and all(e["msg"] for e in response["errors"])


def test_a_caller_without_tenant_is_refused(stack: Stack) -> None:
    status, _, _ = stack.api("POST", "/sessions", body={"request": "x"}, claims={"sub": "mallory"})
    assert status == 403


def test_only_allowed_models_may_be_chosen(stack: Stack) -> None:
    status, _, body = stack.api(
        "POST", "/sessions", body={"request": "x", "options": {"model": "gpt-x"}}
    )
    assert status == 422
    assert "allowed" in body


def test_prefer_wait_returns_the_result_when_it_is_ready(stack: Stack, database: Database) -> None:
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if stack.work.poll_once() == 0:
                time.sleep(0.05)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        status, _, view = stack.api(
            "POST", "/sessions", body={"request": "book"}, headers={"Prefer": "wait=8"}
        )
    finally:
        stop.set()
        thread.join()
    assert status == 200
    assert view["status"] == "completed"
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]


def test_cancelling_a_queued_session_means_it_never_runs(stack: Stack, database: Database) -> None:
    session_id = stack.create()
    status, _, view = stack.api("POST", f"/sessions/{session_id}/cancel")
    assert (status, view["status"]) == (202, "cancelled")

    stack.drain()

    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "cancelled"
    assert view["steps"] == 0
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_options_tighten_the_deployment_limits(stack: Stack) -> None:
    session_id = stack.create(max_steps=2)
    stack.drain()
    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "stopped"
    assert view["outcome"] == "step_limit"
    assert view["steps"] == 2
    assert view["partial_result"][0]["tool"] == "customer_lookup"


def test_every_item_of_a_session_expires_with_it(stack: Stack) -> None:
    session_id = stack.create()
    stack.drain()
    items = stack.cloud.client("dynamodb").query(
        TableName=stack.cloud.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}},
    )["Items"]
    expiries = {item["expires_at"]["N"] for item in items}
    assert len(items) > 10  # the record, its steps and its events
    assert len(expiries) == 1
    assert int(expiries.pop()) > time.time() + 29 * 86_400
