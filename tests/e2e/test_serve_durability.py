"""`lockgate serve` as real clients see it: many users at once, restarts (SIGKILL and
SIGTERM) in the middle of sessions, and HTTP spoken exactly on the wire."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from db.migrate import migrate
from local.cli import DEMO_SCRIPT
from tests.conftest import Database, Template
from tests.e2e.serving import Serve
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"completed", "stopped", "cancelled", "failed"}


@pytest.fixture
def serve_factory(
    database: Database, template_db: Template, tmp_path: Path
) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        if server.process is not None:
            server.process.kill()
            server.process.wait()
    # serve gave the cluster-wide tool roles its own passwords; restore the suite's.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        migrate(conn, CONTRACTS, template_db.passwords)


def slow_demo(tmp_path: Path, seconds: float) -> str:
    """The demo script with a think time per decision, so that sessions are mid-way."""
    script = tmp_path / "slow-demo.yaml"
    script.write_text(DEMO_SCRIPT.read_text() + f"\nlatency_seconds: {seconds}\n")
    return f"scripted:{script}"


def runtime_rows(database: Database) -> list[tuple[str, str, str]]:
    """(session_id, status, spec) of every stored session, read as the superuser."""
    rows = database.rows("SELECT session_id, status, spec FROM lockgate_runtime.sessions")
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_concurrent_users_never_cross(
    serve_factory: list[Serve], database: Database, tmp_path: Path
) -> None:
    # Given one serve and 16 clients at once, alice (tenant acme) and carol (tenant globex)
    server = Serve(database.admin_url, tmp_path, f"scripted:{DEMO_SCRIPT}", workers=4)
    serve_factory.append(server)
    server.start()
    users = ["alice", "carol"] * 16
    headers = {user: server.headers(user) for user in set(users)}

    def create(i: int) -> tuple[str, str, str, int]:
        user, text = users[i], f"request {i} from {users[i]}"
        with httpx.Client(base_url=server.url, headers=headers[user], timeout=60) as client:
            response = client.post(
                "/sessions", json={"request": text}, headers={"Prefer": "wait=20"}
            )
            return user, text, response.json()["session_id"], response.status_code

    # When each posts its own request
    with ThreadPoolExecutor(max_workers=16) as pool:
        created = list(pool.map(create, range(len(users))))

    # Then every stored session has its creator as owner and its creator's text
    stored = {sid: json.loads(spec) for sid, _, spec in runtime_rows(database)}
    assert len(stored) == len(users)
    for user, text, session_id, status in created:
        assert status == 200
        assert stored[session_id]["principal"]["user_id"] == user
        assert stored[session_id]["principal"]["tenant_id"] == (
            "acme" if user == "alice" else "globex"
        )
        assert stored[session_id]["request"] == text
    # ... no one reads another's session
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for user, _, session_id, _ in created[:8]:
            for reader in ("alice", "carol"):
                code = client.get(f"/sessions/{session_id}", headers=headers[reader]).status_code
                assert code == (200 if reader == user else 404)
    # ... and every booking is alice's, once per alice session (carol's tenant has no C-1001)
    assert database.rows("SELECT booked_by, tenant_id, count(*) FROM bookings GROUP BY 1, 2") == [
        ("alice", "acme", 16)
    ]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_a_restart_loses_nothing_and_books_each_flight_once(
    serve_factory: list[Serve], database: Database, tmp_path: Path, sig: signal.Signals
) -> None:
    # Given sessions queued and running on a serve with a slow model and two workers
    server = Serve(database.admin_url, tmp_path, slow_demo(tmp_path, 0.1), workers=2)
    serve_factory.append(server)
    server.start()
    alice = server.headers("alice")
    ids = [
        httpx.post(f"{server.url}/sessions", json={"request": f"s{i}"}, headers=alice).json()[
            "session_id"
        ]
        for i in range(10)
    ]
    deadline = time.monotonic() + 60
    while not any(status == "completed" for _, status, _ in runtime_rows(database)):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # When serve is stopped mid-way
    server.stop(sig)
    before = {sid: status for sid, status, _ in runtime_rows(database)}
    finished = dict(
        database.rows(
            "SELECT session_id, version FROM lockgate_runtime.sessions WHERE status = 'completed'"
        )
    )
    assert set(before) == set(ids)
    assert {"queued", "running"} & set(before.values()), before  # some were not finished

    # ... and started again
    server.start()
    deadline = time.monotonic() + 120
    views: dict[str, dict[str, object]] = {}
    while len(views) < len(ids):
        assert time.monotonic() < deadline, views
        for session_id in ids:
            view = httpx.get(f"{server.url}/sessions/{session_id}", headers=alice).json()
            if view["status"] in TERMINAL:
                views[session_id] = view
        time.sleep(0.2)

    # Then every session is there and completed, finished ones untouched, each booked once
    assert {v["status"] for v in views.values()} == {"completed"}
    assert {v["steps"] for v in views.values()} == {5}
    assert finished  # sessions that had finished were not run again
    assert (
        dict(
            database.rows(
                "SELECT session_id, version FROM lockgate_runtime.sessions WHERE session_id = ANY(%s)",
                list(finished),
            )
        )
        == finished
    )
    assert database.rows("SELECT count(*) FROM bookings") == [(len(ids),)]
    events = database.rows(
        "SELECT session_id, count(*) FILTER (WHERE body LIKE %s) FROM lockgate_runtime.events"
        " GROUP BY 1",
        '%"kind": "final"%',
    )
    assert sorted(count for _, count in events) == [1] * len(ids)  # one final event each


def raw_exchange(port: int, payload: bytes) -> list[bytes]:
    """Send bytes on one connection; return the status code of every response read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", data)


def test_http_on_the_wire(serve_factory: list[Serve], database: Database, tmp_path: Path) -> None:
    server = Serve(database.admin_url, tmp_path, f"scripted:{DEMO_SCRIPT}", workers=1)
    serve_factory.append(server)
    server.start()
    alice, carol = server.headers("alice"), server.headers("carol")

    # A refused request's body is read whole: the next request on the connection is answered.
    body = b'{"request": "GET /health HTTP/1.1"}'
    statuses = raw_exchange(
        server.port,
        b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
        + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert statuses == [b"401", b"200"]

    # A method the resource lacks: 405 with Allow, whatever the method.
    for method in ("PUT", "DELETE", "PATCH", "FROBNICATE"):
        response = httpx.request(method, f"{server.url}/sessions", headers=alice)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.json()["message"]
    assert httpx.delete(f"{server.url}/sessions/abc", headers=alice).headers["allow"] == "GET"

    # Someone else's stream is not found, as the session itself is.
    session_id = httpx.post(f"{server.url}/sessions", json={"request": "x"}, headers=alice).json()[
        "session_id"
    ]
    stream = httpx.get(f"{server.url}/sessions/{session_id}/stream", headers=carol)
    assert stream.status_code == 404
    assert httpx.get(f"{server.url}/sessions/nope/stream", headers=alice).status_code == 404

    # A body that is not what Content-Length says, or too large, closes the connection.
    statuses = raw_exchange(
        server.port,
        b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}",
    )
    assert statuses == [b"413"]

    # SIGTERM stops the server (and the test's wait is only a liveness bound).
    assert server.stop(signal.SIGTERM) == 0
