"""Whole sessions through the local stack: scripted model → loop → in-process tool handlers
(each on its own database role) → real PostgreSQL. Assertions are on rows and outcomes."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from moto import mock_aws

from db.migrate import migrate
from local.cli import DEMO_SCRIPT, main
from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import ErrorKind, FinalAnswer, Outcome, SessionState, ToolCall
from tests.conftest import Database, Template
from tests.fakes import ALICE
from tools.customer_lookup.contract import SPEC as LOOKUP
from tools.customer_lookup.handler import lookup
from tools.kit.handler import ToolHandler
from tools.registry import CONTRACTS


def run(
    invoker: InProcessInvoker, model: ScriptedModel, limits: Limits | None = None
) -> SessionState:
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=model, invoker=invoker, store=MemoryStore(), limits=limits
    )
    return orchestrator.run(orchestrator.start("e2e", "request", ALICE))


def call(tool: str, **arguments: object) -> ToolCall:
    return ToolCall(call_id="c", tool=tool, arguments=json.dumps(arguments))


def test_demo_books_a_flight_after_a_validation_round_trip(
    invoker: InProcessInvoker, database: Database
) -> None:
    state = run(invoker, ScriptedModel.from_file(DEMO_SCRIPT))

    assert state.outcome is Outcome.COMPLETED
    lookup_step, rejected, booked = state.steps[:3]
    assert lookup_step.observation is not None and lookup_step.observation.status == "ok"
    assert rejected.observation is not None and not rejected.invoked
    assert rejected.observation.error_kind is ErrorKind.VALIDATION
    assert {e["field"] for e in rejected.observation.details["errors"]} == {"origin", "destination"}
    assert booked.observation is not None and booked.observation.status == "ok"
    in_10_days = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)
    assert database.rows(
        "SELECT b.customer_id, b.cabin, b.booked_by, f.flight_no, f.origin, f.destination, f.departs_at::date"
        " FROM bookings b JOIN flights f ON f.id = b.flight_id"
    ) == [("C-1001", "business", "alice", "LG100", "CDG", "JFK", in_10_days)]


def test_step_limit_stops_a_real_session(invoker: InProcessInvoker, database: Database) -> None:
    model = ScriptedModel(
        [call("customer_lookup", customer_id=f"C-100{i}") for i in range(1, 4)]
        + [call("customer_update", customer_id="C-1001", tier="silver")]
    )
    state = run(invoker, model, Limits(max_steps=3))

    assert state.outcome is Outcome.STEP_LIMIT
    assert [p["output"]["customer_id"] for p in state.partial_result()] == [
        "C-1001",
        "C-1002",
        "C-1003",
    ]
    assert database.rows("SELECT tier FROM customers WHERE id = 'C-1001'") == [("gold",)]


def test_loop_detected_on_a_repeated_write(invoker: InProcessInvoker, database: Database) -> None:
    model = ScriptedModel(
        [call("customer_update", customer_id="C-1003", tier="silver")], repeat_last=True
    )
    state = run(invoker, model)

    assert state.outcome is Outcome.LOOP_DETECTED
    # The repeat is answered with the first result, not run: the write runs once.
    assert [s.invoked for s in state.steps] == [True, False, False]
    assert database.rows("SELECT tier FROM customers WHERE id = 'C-1003'") == [("silver",)]
    assert database.rows("SELECT count(*) FROM lockgate_idempotency") == [(1,)]


def test_unknown_tool_costs_a_turn_not_a_side_effect(
    invoker: InProcessInvoker, database: Database
) -> None:
    before = database.rows("SELECT id, tier, email FROM customers ORDER BY id")
    model = ScriptedModel(
        [call("customer_delete", customer_id="C-1001"), FinalAnswer(text="cannot")]
    )
    state = run(invoker, model)

    assert state.outcome is Outcome.COMPLETED
    observation = state.steps[0].observation
    assert observation is not None and observation.details["available"] == [
        s.name for s in CONTRACTS
    ]
    assert database.rows("SELECT id, tier, email FROM customers ORDER BY id") == before


def test_replayed_write_through_the_invoker_writes_once(
    invoker: InProcessInvoker, database: Database
) -> None:
    envelope = {
        "principal": ALICE.model_dump(mode="json"),
        "input": {
            "customer_id": "C-1002",
            "origin": "LHR",
            "destination": "SFO",
            "date": (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=5)).isoformat(),
        },
        "idempotency_key": "session-7:3",
    }
    first = invoker.invoke("flight_book", envelope)
    second = invoker.invoke("flight_book", envelope)

    assert first.output == second.output
    assert (first.replayed, second.replayed) == (False, True)
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]


def test_tool_reads_its_own_secret_from_secrets_manager(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    params = psycopg.conninfo.conninfo_to_dict(database.role_url(LOOKUP))
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = secrets.create_secret(
            Name="lockgate/tool/customer_lookup",
            SecretString=json.dumps(
                {
                    "host": params["host"],
                    "port": int(str(params["port"])),
                    "dbname": params["dbname"],
                    "username": params["user"],
                    "ssl": False,  # the local server has no TLS; RDS secrets omit this (TLS on)
                    "password": params["password"],
                }
            ),
        )["ARN"]
        monkeypatch.setenv("LOCKGATE_DB_SECRET_ID", arn)
        caplog.set_level(logging.DEBUG)  # botocore logs response bodies at DEBUG
        handler = ToolHandler(LOOKUP, lookup)  # reads its settings from the Lambda environment
        response = handler(
            {
                "principal": ALICE.model_dump(mode="json"),
                "input": {"customer_id": "C-1001"},
                "idempotency_key": "k",
            }
        )
        handler.db.close()
        monkeypatch.setenv("LOCKGATE_DB_SECRET_ID", "lockgate/tool/missing")
        misconfigured = ToolHandler(LOOKUP, lookup)(
            {
                "principal": ALICE.model_dump(mode="json"),
                "input": {"customer_id": "C-1001"},
                "idempotency_key": "k",
            }
        )
    assert response["output"]["name"] == "Ada Lovelace"
    assert misconfigured["error"]["kind"] in {"internal", "transient"}
    assert "GetSecretValue" in caplog.text  # the call was logged...
    assert str(params["password"]) not in caplog.text  # ...its secret was not


@pytest.fixture
def cli_database(
    database: Database, template_db: Template, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("LOCKGATE_DATABASE_URL", database.admin_url)
    yield database
    # The CLI gives the (cluster-wide) tool roles fresh passwords; restore the suite's.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        migrate(conn, CONTRACTS, template_db.passwords)


def test_cli_run_prints_json_and_writes_the_booking(cli_database: Database) -> None:
    out = io.StringIO()
    code = main(["run", "book it", "--model", f"scripted:{DEMO_SCRIPT}", "--json"], out=out)

    document = json.loads(out.getvalue())
    assert code == 0
    assert document["outcome"] == "completed"
    assert len(document["steps"]) == 5
    assert cli_database.rows("SELECT count(*) FROM bookings WHERE customer_id = 'C-1001'") == [(1,)]


def test_cli_run_as_a_read_only_user_writes_nothing(cli_database: Database) -> None:
    out = io.StringIO()
    main(["run", "book it", "--user", "bob", "--json"], out=out)

    # bob may only read customers: flight_book is neither offered nor invoked.
    steps = json.loads(out.getvalue())["steps"]
    attempts = [s for s in steps if s["turn"]["decision"].get("tool") == "flight_book"]
    assert attempts
    assert all(
        not s["invoked"] and s["observation"]["error_kind"] == "validation" for s in attempts
    )
    assert cli_database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_cli_rejects_bad_model_spec(tmp_path: Path) -> None:
    assert main(["run", "x", "--model", "gpt:4"]) == 2
    assert main(["run", "x", "--model", f"scripted:{tmp_path / 'missing.yaml'}"]) == 2


def test_cli_tools_exports_every_format() -> None:
    for fmt in ("json", "bedrock", "openai", "anthropic", "mcp"):
        out = io.StringIO()
        assert main(["tools", "--format", fmt], out=out) == 0
        assert len(json.loads(out.getvalue())) == len(CONTRACTS)
