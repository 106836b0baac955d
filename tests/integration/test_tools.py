"""Each tool's Lambda handler, bound to its own database role, against real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Database
from tools.customer_lookup.handler import handler as lookup_handler
from tools.customer_update.handler import handler as update_handler
from tools.flight_book.handler import handler as book_handler
from tools.kit.handler import ToolHandler

ALICE = {
    "user_id": "alice",
    "tenant_id": "acme",
    "scopes": ["customers:read", "customers:write", "flights:read", "bookings:write"],
}
CAROL = {"user_id": "carol", "tenant_id": "globex", "scopes": ALICE["scopes"]}
IN_30_DAYS = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()


@pytest.fixture
def bound(database: Database) -> Iterator[dict[str, ToolHandler[Any, Any]]]:
    settings = database.tool_settings()
    handlers = {
        h.spec.name: h.bind(settings[h.spec.name])
        for h in (lookup_handler, update_handler, book_handler)
    }
    yield handlers
    for h in handlers.values():
        h.db.close()


def envelope(
    data: dict[str, Any], principal: dict[str, Any] = ALICE, key: str = "s:0"
) -> dict[str, Any]:
    return {"principal": principal, "input": data, "idempotency_key": key}


def booking(**overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": "C-1001",
        "origin": "CDG",
        "destination": "JFK",
        "date": IN_30_DAYS,
        "cabin": "business",
        **overrides,
    }


def test_lookup_reads_own_tenant(bound: dict[str, ToolHandler[Any, Any]]) -> None:
    response = bound["customer_lookup"](envelope({"customer_id": "C-1001"}))
    assert response == {
        "status": "ok",
        "output": {
            "customer_id": "C-1001",
            "name": "Ada Lovelace",
            "email": "ada@acme.example",
            "tier": "gold",
        },
        "replayed": False,
    }


def test_other_tenants_customer_is_not_found(bound: dict[str, ToolHandler[Any, Any]]) -> None:
    response = bound["customer_lookup"](envelope({"customer_id": "C-2001"}))
    assert response["error"]["kind"] == "not_found"
    response = bound["customer_lookup"](envelope({"customer_id": "C-2001"}, CAROL))
    assert response["output"]["name"] == "Hank Scorpio"


def test_update_writes_the_row(bound: dict[str, ToolHandler[Any, Any]], database: Database) -> None:
    response = bound["customer_update"](envelope({"customer_id": "C-1002", "tier": "platinum"}))
    assert response["output"]["tier"] == "platinum"
    assert database.rows("SELECT tier, email FROM customers WHERE id = 'C-1002'") == [
        ("platinum", "grace@acme.example")
    ]


def test_update_cannot_touch_another_tenant(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["customer_update"](envelope({"customer_id": "C-2001", "tier": "standard"}))
    assert response["error"]["kind"] == "not_found"
    assert database.rows("SELECT tier FROM customers WHERE id = 'C-2001'") == [("platinum",)]


def test_booking_writes_one_row(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["flight_book"](envelope(booking()))
    assert response["status"] == "ok"
    rows = database.rows(
        "SELECT b.id::text, b.tenant_id, b.customer_id, b.cabin, b.booked_by, f.flight_no, f.departs_at::date"
        " FROM bookings b JOIN flights f ON f.id = b.flight_id"
    )
    assert rows == [
        (
            response["output"]["booking_id"],
            "acme",
            "C-1001",
            "business",
            "alice",
            "LG100",
            dt.date.fromisoformat(IN_30_DAYS),
        )
    ]


def test_unknown_airport_code_explains_what_is_expected(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["flight_book"](envelope(booking(origin="PAR")))
    assert response["error"]["kind"] == "validation"
    assert response["error"]["details"]["unknown"] == {"origin": "PAR"}
    assert "CDG" in response["error"]["details"]["known"]
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_no_flight_that_day_is_not_found(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["flight_book"](envelope(booking(origin="LIS", destination="NRT")))
    assert response["error"]["kind"] == "not_found"
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_booking_for_another_tenants_customer_writes_nothing(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["flight_book"](envelope(booking(customer_id="C-2001")))
    assert response["error"]["kind"] == "not_found"
    assert database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_replayed_write_returns_the_first_result_and_writes_once(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    first = bound["flight_book"](envelope(booking(), key="sess-1:2"))
    again = bound["flight_book"](envelope(booking(), key="sess-1:2"))

    assert again["output"] == first["output"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]
    assert database.rows("SELECT tool_role, key FROM lockgate_idempotency") == [
        ("lockgate_flight_book", "sess-1:2")
    ]


def test_key_reused_with_different_input_is_a_conflict(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    bound["flight_book"](envelope(booking(), key="k"))
    response = bound["flight_book"](envelope(booking(cabin="first"), key="k"))
    assert response["error"]["kind"] == "conflict"
    assert database.rows("SELECT cabin FROM bookings") == [("business",)]


def test_failed_write_releases_its_idempotency_key(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    bound["flight_book"](envelope(booking(origin="PAR"), key="k"))
    response = bound["flight_book"](envelope(booking(), key="k"))
    assert response["status"] == "ok"
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]


def test_missing_scope_is_forbidden_and_writes_nothing(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    reader = {**ALICE, "scopes": ["customers:read"]}
    response = bound["customer_update"](
        envelope({"customer_id": "C-1001", "tier": "standard"}, reader)
    )
    assert response["error"]["kind"] == "forbidden"
    assert database.rows("SELECT tier FROM customers WHERE id = 'C-1001'") == [("gold",)]


def test_handler_validates_input_again(
    bound: dict[str, ToolHandler[Any, Any]], database: Database
) -> None:
    response = bound["customer_update"](
        envelope({"customer_id": "C-1001", "tier": "gold", "tenant_id": "globex"})
    )
    assert response["error"]["kind"] == "validation"
    assert response["error"]["details"]["errors"][0]["field"] == "tenant_id"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"principal": ALICE, "input": {"customer_id": "C-1001"}},
        {"principal": {"user_id": "x"}, "input": {}, "idempotency_key": "k"},
        {
            "principal": ALICE,
            "input": {"customer_id": "C-1001"},
            "idempotency_key": "k",
            "extra": 1,
        },
    ],
)
def test_malformed_envelope_is_a_validation_error(
    bound: dict[str, ToolHandler[Any, Any]], event: dict[str, Any]
) -> None:
    assert bound["customer_lookup"](event)["error"]["kind"] == "validation"


def test_unreachable_database_is_transient() -> None:
    from pydantic import SecretStr

    from tools.kit.settings import DatabaseCredentials, ToolSettings

    nowhere = DatabaseCredentials(
        host="127.0.0.1", port=1, dbname="x", username="x", password=SecretStr("x"), ssl=False
    )
    dead = lookup_handler.bind(ToolSettings(database=nowhere, connect_timeout_seconds=1))
    assert dead(envelope({"customer_id": "C-1001"}))["error"]["kind"] == "transient"


def test_a_bug_in_a_tool_leaks_nothing_to_the_model(database: Database) -> None:
    from tools.customer_lookup.contract import SPEC
    from tools.kit.envelope import ToolError
    from tools.kit.handler import ToolContext

    def broken(ctx: ToolContext, data: Any) -> ToolError:
        ctx.cur.execute("SELECT secret_column FROM no_such_table")
        raise AssertionError("unreachable")

    def crashing(ctx: ToolContext, data: Any) -> ToolError:
        raise RuntimeError(f"password=hunter2 dsn={database.admin_url}")

    settings = database.tool_settings()["customer_lookup"]
    for run in (broken, crashing):
        handler = ToolHandler(SPEC, run, settings)
        error = handler(envelope({"customer_id": "C-1001"}))["error"]
        handler.db.close()
        assert error["kind"] == "internal"
        assert error["details"] == {}
        for leak in ("SELECT", "no_such_table", "hunter2", "password", "127.0.0.1"):
            assert leak not in error["message"]


def test_flight_search_lists_a_routes_departures(database: Database) -> None:
    from tools.flight_search.handler import handler as search_handler

    search = search_handler.bind(database.tool_settings()["flight_search"])
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    response = search(
        envelope({"origin": "AMS", "destination": "LIS", "date_from": start.isoformat(), "days": 4})
    )
    departures = [f["departs_at"][:10] for f in response["output"]["flights"]]
    assert departures == [(start + dt.timedelta(days=i)).isoformat() for i in range(4)]
    assert {f["flight_no"] for f in response["output"]["flights"]} == {"LG300"}

    unknown = search(
        envelope({"origin": "XXX", "destination": "LIS", "date_from": start.isoformat()})
    )
    assert unknown["error"]["kind"] == "validation"
    assert unknown["error"]["details"]["unknown"] == {"origin": "XXX"}
    search.db.close()
