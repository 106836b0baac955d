"""`lockgate serve` in a subprocess, driven over real HTTP with httpx: create → 202 →
server-sent events → completed, with the database rows written."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from db.migrate import migrate
from local.auth import issue_token
from orchestrator.handlers.api import openapi_document
from tests.conftest import Database, Template
from tests.e2e.serving import Serve
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(database: Database, template_db: Template, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    server = Serve(database.admin_url, tmp_path)
    server.start()
    try:
        yield server.url, tmp_path
    finally:
        server.stop(signal.SIGTERM)
        # serve set the cluster-wide tool roles to its own passwords; restore the suite's.
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            migrate(conn, CONTRACTS, template_db.passwords)


def test_create_stream_and_read_back_over_http(
    served: tuple[str, Path], database: Database
) -> None:
    url, home = served
    headers = {"Authorization": f"Bearer {issue_token(home, 'alice')}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        created = client.post("/sessions", json={"request": "book Ada to New York"})
        assert created.status_code == 202
        session_id = created.json()["session_id"]
        assert created.headers["location"] == f"/sessions/{session_id}"

        kinds: list[str] = []
        with client.stream("GET", f"/sessions/{session_id}/stream") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kinds.append(line.removeprefix("event: "))
                if kinds and kinds[-1] in {"final", "stopped"}:
                    break
        assert kinds[0] == "session_started"
        assert kinds[-1] == "final"

        view = client.get(f"/sessions/{session_id}").json()
        assert view["status"] == "completed"
        assert view["steps"] == 5

        waited = client.post("/sessions", json={"request": "again"}, headers={"Prefer": "wait=20"})
        assert waited.status_code == 200
        assert waited.json()["status"] == "completed"

    assert database.rows("SELECT count(*) FROM bookings WHERE customer_id = 'C-1001'") == [(2,)]


def test_requests_without_a_valid_token_are_refused(served: tuple[str, Path]) -> None:
    url, _ = served
    assert httpx.post(f"{url}/sessions", json={"request": "x"}).status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
    assert httpx.get(f"{url}/sessions/abc", headers=forged).status_code == 401


def test_another_users_session_is_not_found_over_http(served: tuple[str, Path]) -> None:
    url, home = served
    alice = {"Authorization": f"Bearer {issue_token(home, 'alice')}"}
    carol = {"Authorization": f"Bearer {issue_token(home, 'carol')}"}
    session_id = httpx.post(f"{url}/sessions", json={"request": "x"}, headers=alice).json()[
        "session_id"
    ]
    assert httpx.get(f"{url}/sessions/{session_id}", headers=carol).status_code == 404


def test_the_published_openapi_document_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == json.loads(openapi_document())


def test_lockgate_run_goes_through_the_api(
    served: tuple[str, Path], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from local.cli import main

    url, home = served
    monkeypatch.setenv("LOCKGATE_HOME", str(home))  # the server's signing key
    out = io.StringIO()
    code = main(["run", "book Ada to New York", "--api", url, "--json"], out=out)

    assert code == 0
    assert json.loads(out.getvalue())["status"] == "completed"
    assert database.rows("SELECT count(*) FROM bookings WHERE customer_id = 'C-1001'") == [(1,)]
