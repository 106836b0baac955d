"""Per-tool database roles hold exactly the privileges their contracts declare."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from orchestrator.sessions.postgres import install
from tests.conftest import Database
from tools.customer_lookup.contract import SPEC as LOOKUP
from tools.customer_update.contract import SPEC as UPDATE
from tools.flight_book.contract import SPEC as BOOK
from tools.flight_search.contract import SPEC as SEARCH
from tools.kit.contract import ToolSpec
from tools.registry import CONTRACTS


def run_as(
    database: Database, spec: ToolSpec, statement: str, tenant: str = "acme"
) -> list[tuple[object, ...]]:
    with psycopg.connect(database.role_url(spec)) as conn:
        conn.execute("SELECT set_config('lockgate.tenant_id', %s, false)", (tenant,))
        cur = conn.execute(statement)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.mark.parametrize(
    ("spec", "statement"),
    [
        (LOOKUP, "UPDATE customers SET tier = 'gold'"),
        (LOOKUP, "DELETE FROM customers"),
        (LOOKUP, "SELECT * FROM bookings"),
        (LOOKUP, "SELECT * FROM lockgate_idempotency"),
        (
            UPDATE,
            "INSERT INTO bookings (customer_id, flight_id, cabin) VALUES ('C-1001', gen_random_uuid(), 'economy')",
        ),
        (UPDATE, "DELETE FROM customers"),
        (UPDATE, "SELECT * FROM flights"),
        (BOOK, "SELECT * FROM customers"),
        (BOOK, "UPDATE bookings SET cabin = 'first'"),
        (BOOK, "DELETE FROM bookings"),
        (BOOK, "UPDATE flights SET origin = 'LHR'"),
        (BOOK, "SELECT * FROM lockgate_schema_migrations"),
        (BOOK, "CREATE TABLE evil (x int)"),
        (SEARCH, "SELECT * FROM customers"),
        (SEARCH, "SELECT * FROM bookings"),
        (SEARCH, "UPDATE flights SET flight_no = 'X'"),
    ],
)
def test_undeclared_privileges_are_denied(
    database: Database, spec: ToolSpec, statement: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        run_as(database, spec, statement)


def test_declared_privileges_work(database: Database) -> None:
    assert run_as(database, LOOKUP, "SELECT count(*) FROM customers") == [(3,)]
    assert run_as(database, BOOK, "SELECT count(*) FROM airports")[0][0] > 0


def test_row_level_security_hides_other_tenants(database: Database) -> None:
    assert run_as(database, LOOKUP, "SELECT id FROM customers ORDER BY id", tenant="globex") == [
        ("C-2001",),
        ("C-2002",),
    ]
    assert run_as(database, LOOKUP, "SELECT id FROM customers", tenant="") == []


def test_tool_roles_are_not_privileged(database: Database) -> None:
    rows = database.rows(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
        " WHERE rolname LIKE 'lockgate\\_%%' AND rolname NOT IN ('lockgate', 'lockgate_runtime')"
        " ORDER BY rolname"
    )
    assert rows == [
        (s.db_role, False, False, False, False)
        for s in sorted((s for s in CONTRACTS if s.needs_database), key=lambda s: s.db_role)
    ]


def test_a_tool_sees_only_its_own_idempotency_keys(database: Database) -> None:
    database.rows(
        "INSERT INTO lockgate_idempotency (tool_role, key, request_hash) VALUES ('lockgate_customer_update', 'k', 'h') RETURNING key"
    )
    assert run_as(database, BOOK, "SELECT key FROM lockgate_idempotency") == []


@pytest.mark.parametrize("table", ["sessions", "steps", "events", "queue"])
def test_no_tool_role_reaches_the_session_runtime(database: Database, table: str) -> None:
    # Given the runtime's schema on the same database, as `lockgate serve` installs it
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        install(conn)
    # Then no tool can read or write sessions, checkpoints, events or the queue
    for spec in (s for s in CONTRACTS if s.needs_database):
        with pytest.raises(errors.InsufficientPrivilege):
            run_as(database, spec, f"SELECT * FROM lockgate_runtime.{table}")
