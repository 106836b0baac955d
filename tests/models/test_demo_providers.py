"""`lockgate run "<the demo request>" --model openai:MODEL` (and `anthropic:MODEL`) against a
local server that speaks the provider's wire format and plays the demo's decisions, with the
official SDK configured only through its own environment variables: the booking row is
written, on the date the model computed from the date Lockgate told it."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from db.migrate import migrate
from local.cli import DEMO_REQUEST, main
from tests.conftest import Database, Template
from tests.models.wire import Provider, Reply, anthropic_reply, openai_reply
from tools.registry import CONTRACTS

TODAY = re.compile(r"Today is \w+ (\d{4}-\d{2}-\d{2})")


def demo_decisions(system: str, results: int) -> tuple[str | None, str, dict[str, Any]]:
    """The demo's decisions (local/demo.yaml), the date taken from the system prompt as a
    model would: (reason, tool or '' for the final answer, arguments)."""
    match = TODAY.search(system)
    assert match, "the model must be told today's date"
    day = (dt.date.fromisoformat(match.group(1)) + dt.timedelta(days=10)).isoformat()
    book = {"customer_id": "C-1001", "date": day, "cabin": "business"}
    script: list[tuple[str | None, str, dict[str, Any]]] = [
        ("First the customer.", "customer_lookup", {"customer_id": "C-1001"}),
        (None, "flight_book", {**book, "origin": "Paris", "destination": "New York"}),
        ("IATA codes, then.", "flight_book", {**book, "origin": "CDG", "destination": "JFK"}),
        (None, "weather_lookup", {"airport": "JFK", "date": day}),
        (None, "", {"text": "Booked Ada Lovelace on LG100 CDG->JFK; forecast looked up."}),
    ]
    return script[min(results, len(script) - 1)]


def play_openai(body: dict[str, Any]) -> Reply:
    results = sum(1 for m in body["messages"] if m["role"] == "tool")
    reason, tool, arguments = demo_decisions(body["messages"][0]["content"], results)
    if not tool:
        return openai_reply(content=arguments["text"])
    return openai_reply(
        content=reason, tool_calls=[(f"call_{results}", tool, json.dumps(arguments))]
    )


def play_anthropic(body: dict[str, Any]) -> Reply:
    results = sum(
        1
        for m in body["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    )
    reason, tool, arguments = demo_decisions(body["system"][0]["text"], results)
    if not tool:
        return anthropic_reply(text=arguments["text"])
    return anthropic_reply(text=reason, tool_uses=[(f"toolu_{results}", tool, arguments)])


@pytest.fixture
def cli_database(
    database: Database, template_db: Template, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("LOCKGATE_DATABASE_URL", database.admin_url)
    yield database
    # The CLI gives the (cluster-wide) tool roles fresh passwords; restore the suite's.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        migrate(conn, CONTRACTS, template_db.passwords)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_the_demo_request_books_through_a_local_provider(
    kind: str, provider: Provider, cli_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = cli_database
    if kind == "openai":
        provider.play = play_openai
        monkeypatch.setenv("OPENAI_BASE_URL", f"{provider.url}/v1")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs none
    else:
        provider.play = play_anthropic
        monkeypatch.setenv("ANTHROPIC_BASE_URL", provider.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-local")
    out = io.StringIO()

    code = main(["run", DEMO_REQUEST, "--model", f"{kind}:demo-model", "--json"], out=out)

    assert code == 0
    session = json.loads(out.getvalue())
    assert session["outcome"] == "completed"
    assert session["facts"] == {
        "writes_done": 1,
        "last_write_ok": True,
        "validation_errors": 1,
        "tool_retries": 0,
    }
    assert list(session["usage_by_model"]) == [f"{kind}:demo-model"]
    assert session["usage"]["input_tokens"] > 0
    in_10_days = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)
    assert database.rows(
        "SELECT b.customer_id, b.cabin, f.origin, f.destination, f.departs_at::date"
        " FROM bookings b JOIN flights f ON f.id = b.flight_id"
    ) == [("C-1001", "business", "CDG", "JFK", in_10_days)]
    assert len(provider.sent) == 5
    # The rejected city names reached the model as the exact validation error.
    third = provider.sent[2].body["messages"]
    assert "IATA code" in json.dumps(third[-1])


def test_bad_specs_missing_credentials_and_bad_time_zones_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "x", "--model", "gpt:4"]) == 2
    assert main(["run", "x", "--model", "openai:"]) == 2
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["run", "x", "--model", "openai:m"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-printed")
    assert main(["run", "x", "--model", "openai:m", "--time-zone", "Mars/Olympus"]) == 2
    assert "sk-never-printed" not in capsys.readouterr().err
