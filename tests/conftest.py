"""Shared fixtures: a real PostgreSQL server and a fresh, migrated database per test.

The server is `LOCKGATE_TEST_DATABASE_URL` if set (a superuser URL; tests create and drop
their own databases there), otherwise an embedded cluster in a temporary directory that is
removed afterwards. Tests never touch the developer's `.lockgate` data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from db.migrate import migrate, seed
from local.postgres import EmbeddedPostgres
from local.stack import role_url, tool_settings, upstream_services
from orchestrator.invokers.in_process import InProcessInvoker
from tools.kit.contract import ToolSpec
from tools.kit.settings import ToolSettings
from tools.registry import CONTRACTS

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")


@dataclass(frozen=True)
class Server:
    """A superuser connection to a PostgreSQL server, per database name."""

    url_for: dict[str, str]

    def url(self, dbname: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.url_for["postgres"])
        params["dbname"] = dbname
        return psycopg.conninfo.make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    external = os.environ.get("LOCKGATE_TEST_DATABASE_URL")
    if external:
        yield Server({"postgres": external})
        return
    root = Path(tempfile.mkdtemp(prefix="lockgate-test-pg-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "cluster", durable=False)  # thrown away after the run
    server.start()
    try:
        yield Server({"postgres": server.url("postgres")})
    finally:
        server.remove()  # its files too, wherever they had to live
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Template:
    name: str
    passwords: dict[str, str]


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[Template]:
    name = f"lockgate_tmpl_{secrets.token_hex(4)}"
    passwords = {s.db_role: secrets.token_urlsafe(18) for s in CONTRACTS if s.needs_database}
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        migrate(conn, CONTRACTS, passwords)
        seed(conn)
    yield Template(name, passwords)
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Database:
    """A throwaway database cloned from the migrated, seeded template."""

    admin_url: str
    passwords: dict[str, str]
    upstreams: dict[str, str]

    def role_url(self, spec: ToolSpec) -> str:
        return role_url(self.admin_url, spec.db_role, self.passwords[spec.db_role])

    def tool_settings(self) -> dict[str, ToolSettings]:
        return tool_settings(self.admin_url, self.passwords, self.upstreams)

    def rows(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Run a query as the superuser (sees every tenant) and return all rows."""
        with psycopg.connect(self.admin_url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, str]]:
    """The local stand-in of every upstream a contract declares: name → base URL."""
    with upstream_services() as urls:
        yield urls


@pytest.fixture
def database(
    pg_server: Server, template_db: Template, upstreams: dict[str, str]
) -> Iterator[Database]:
    name = f"lockgate_t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db.name)
            )
        )
    yield Database(pg_server.url(name), template_db.passwords, upstreams)
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def invoker(database: Database) -> Iterator[InProcessInvoker]:
    """The local stack's invoker over this test's database: each tool in its own environment."""
    invoker = InProcessInvoker(database.tool_settings())
    yield invoker
    invoker.close()
