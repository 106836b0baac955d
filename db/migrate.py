"""Apply the numbered SQL migrations in order, then sync one database role per tool.

Idempotent: applied versions are recorded in `lockgate_schema_migrations`; roles and grants
are recomputed from the contracts every time, so a privilege removed from a contract is
revoked on the next run. The same function runs locally and in the cloud migration Lambda.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from tools.kit.contract import ToolSpec

MIGRATIONS = Path(__file__).parent / "migrations"
SEED = Path(__file__).parent / "seed"
_LOCK_ID = 7_340_001  # advisory lock key: one migration at a time per database


def pending(conn: psycopg.Connection[Any]) -> list[Path]:
    """Migration files not yet applied, in order."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS lockgate_schema_migrations ("
        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM lockgate_schema_migrations")}
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.stem not in done]


def migrate(
    conn: psycopg.Connection[Any],
    specs: Iterable[ToolSpec],
    passwords: Mapping[str, str] | None = None,
) -> list[str]:
    """Apply pending migrations and sync tool roles; return the versions applied now.

    `conn` must be an autocommit connection of a role that owns the schema. `passwords`
    maps a tool's role name to the password its secret holds; roles without one cannot log in.
    """
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        for path in pending(conn):
            conn.execute(path.read_text())
            conn.execute(
                "INSERT INTO lockgate_schema_migrations (version) VALUES (%s)", (path.stem,)
            )
            applied.append(path.stem)
        for spec in specs:
            if spec.needs_database:
                _sync_role(conn, spec, (passwords or {}).get(spec.db_role))
    return applied


def seed(conn: psycopg.Connection[Any], name: str = "demo") -> None:
    """Load demo data (idempotent)."""
    with conn.transaction():
        conn.execute((SEED / f"{name}.sql").read_text())


def _sync_role(conn: psycopg.Connection[Any], spec: ToolSpec, password: str | None) -> None:
    role = sql.Identifier(spec.db_role)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.db_role,)).fetchone()
    if exists is None:
        # Roles are cluster-wide: a migration of another database may create it first.
        with (
            contextlib.suppress(pg_errors.DuplicateObject, pg_errors.UniqueViolation),
            conn.transaction(),
        ):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(role))
    if password is not None:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
    database = sql.Identifier(conn.info.dbname)
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    grants: dict[str, frozenset[str]] = {t: frozenset(p) for t, p in spec.db_privileges.items()}
    if spec.writes:
        grants["lockgate_idempotency"] = frozenset({"SELECT", "INSERT", "UPDATE"})
    for table, privileges in sorted(grants.items()):
        conn.execute(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges)),
                sql.Identifier(table),
                role,
            )
        )
