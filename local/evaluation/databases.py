"""Databases for an evaluation: one template, migrated and seeded once, cloned per run, and
the values and snapshots the judge compares.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.migrate import migrate, seed
from local.stack import role_passwords, tool_settings
from tools.kit.settings import ToolSettings
from tools.registry import CONTRACTS


@dataclass(frozen=True)
class Template:
    """A migrated, seeded database that every run clones, its tool-role passwords, and the
    base URL of each upstream the contracts declare (the local stand-ins).

    `server_url` is a superuser connection string to any database on the same server.
    """

    server_url: str
    name: str
    passwords: Mapping[str, str]
    upstreams: Mapping[str, str] = field(default_factory=dict)

    def url(self, dbname: str) -> str:
        """Superuser connection string for another database on the same server."""
        params: dict[str, Any] = conninfo_to_dict(self.server_url)
        params["dbname"] = dbname
        return make_conninfo(**params)

    def tool_settings(self, dbname: str) -> dict[str, ToolSettings]:
        """Each tool's settings for a database cloned from this template, as the stack makes them."""
        return tool_settings(self.url(dbname), self.passwords, self.upstreams)

    @contextlib.contextmanager
    def clone(self, dbname: str) -> Iterator[str]:
        """A fresh database cloned from the template, dropped after the block."""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(self.name)
                )
            )
        try:
            yield self.url(dbname)
        finally:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


@contextlib.contextmanager
def prepared_template(
    server_url: str, upstreams: Mapping[str, str] | None = None
) -> Iterator[Template]:
    """Create, migrate and seed a template database for one evaluation; drop it after.

    Tool roles are cluster-wide: they get the passwords every local command shares
    (`role_passwords`), so an evaluation and a `lockgate run` never reset each other's logins.
    """
    name = f"lockgate_eval_tmpl_{secrets.token_hex(4)}"
    every = role_passwords(spec.db_role for spec in CONTRACTS if spec.needs_database)
    passwords = {spec.db_role: every[spec.db_role] for spec in CONTRACTS if spec.needs_database}
    template = Template(server_url, name, passwords, dict(upstreams or {}))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(template.url(name), autocommit=True) as conn:
            migrate(conn, CONTRACTS, passwords)
            seed(conn)
        yield template
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def plain(value: Any) -> Any:
    """A database or YAML value in one comparable JSON form (dates as ISO text, UUIDs as text)."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)


def snapshot(conn: psycopg.Connection[Any], table: str) -> tuple[Any, ...]:
    """Row count and a digest of every row's text: equal snapshots mean an unchanged table."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
            " FROM {} AS t"
        ).format(sql.Identifier(table))
    ).fetchone()
    return tuple(row) if row is not None else ()
