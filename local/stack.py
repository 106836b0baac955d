"""The local stack: a PostgreSQL, the migrations, one role per tool, in-process tools.

Only adapters differ from the cloud: tools run in this process through their Lambda
handlers, each bound to its own database role.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from db.migrate import migrate, seed
from local.postgres import embedded
from local.weather import weather_service
from tools.kit.contract import ToolSpec
from tools.kit.settings import DatabaseCredentials, ToolSettings
from tools.registry import CONTRACTS

DEFAULT_DB = "lockgate"

# The local stand-in for each upstream a contract may declare (`ToolSpec.upstream`): a
# context manager serving it on a loopback port and yielding its base URL.
LOCAL_UPSTREAMS: Mapping[str, Callable[[], AbstractContextManager[str]]] = {
    "weather": weather_service,
}


def home() -> Path:
    """Where local state lives: `$LOCKGATE_HOME` or `./.lockgate`."""
    return Path(os.environ.get("LOCKGATE_HOME", ".lockgate")).resolve()


@contextlib.contextmanager
def database_server() -> Iterator[str]:
    """A superuser connection string to the local database.

    `LOCKGATE_DATABASE_URL` if set (used as it is); otherwise the embedded cluster under
    `home()/postgres`, started for the block and stopped after.
    """
    url = os.environ.get("LOCKGATE_DATABASE_URL")
    if url:
        yield url
        return
    with embedded(home() / "postgres") as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DEFAULT_DB,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEFAULT_DB)))
        yield server.url(DEFAULT_DB)


def role_credentials(admin_url: str, role: str, password: str) -> DatabaseCredentials:
    """A tool role's login on the same server and database as `admin_url` (no TLS locally)."""
    params: dict[str, Any] = conninfo_to_dict(admin_url)
    return DatabaseCredentials(
        host=str(params.get("host", "127.0.0.1")),
        port=int(params.get("port", 5432)),
        dbname=str(params["dbname"]),
        username=role,
        password=SecretStr(password),
        ssl=False,
    )


def role_url(admin_url: str, role: str, password: str) -> str:
    """The same server and database as `admin_url`, logged in as `role`."""
    params: dict[str, Any] = conninfo_to_dict(admin_url)
    params.update(user=role, password=password)
    return make_conninfo(**params)


@contextlib.contextmanager
def upstream_services(specs: Iterable[ToolSpec] = CONTRACTS) -> Iterator[dict[str, str]]:
    """Serve the local stand-in of every upstream these contracts declare, for the block.

    Yields upstream name → base URL, what `tool_settings` and `provision` take.
    """
    names = sorted({spec.upstream for spec in specs if spec.upstream is not None})
    missing = [name for name in names if name not in LOCAL_UPSTREAMS]
    if missing:
        raise ValueError(f"no local stand-in for upstream(s) {', '.join(missing)}")
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(LOCAL_UPSTREAMS[name]()) for name in names}


def tool_settings(
    admin_url: str,
    passwords: Mapping[str, str],
    upstreams: Mapping[str, str],
    specs: Iterable[ToolSpec] = CONTRACTS,
) -> dict[str, ToolSettings]:
    """Each tool's settings: its own database role if it uses PostgreSQL, and the base URL of
    its upstream if it declares one (`upstreams`: upstream name → URL). Nothing else."""
    settings: dict[str, ToolSettings] = {}
    for spec in specs:
        fields: dict[str, Any] = {}
        if spec.needs_database:
            fields["database"] = role_credentials(admin_url, spec.db_role, passwords[spec.db_role])
        if spec.upstream is not None:
            if spec.upstream not in upstreams:
                raise ValueError(f"{spec.name}: no URL for its upstream {spec.upstream!r}")
            fields["upstream_url"] = upstreams[spec.upstream]
        settings[spec.name] = ToolSettings(**fields)
    return settings


def role_passwords(roles: Iterable[str]) -> dict[str, str]:
    """Each local role's password: made once, kept `0600` in `home()/role-passwords.json`.

    Roles are cluster-wide. Every command on the same local database (`run`, `eval`,
    `serve`) sets the same passwords, so one never breaks another's connections; a file
    lock keeps two commands starting at once from writing different ones.
    """
    path = home() / "role-passwords.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [role for role in roles if role not in known]
        if missing:
            known.update({role: secrets.token_urlsafe(24) for role in missing})
            scratch = path.with_suffix(".tmp")
            scratch.write_text(json.dumps(known, indent=2))
            scratch.chmod(0o600)
            scratch.replace(path)
    return known


def provision(
    admin_url: str,
    *,
    upstreams: Mapping[str, str] | None = None,
    specs: Iterable[ToolSpec] = CONTRACTS,
    with_demo_data: bool = True,
) -> dict[str, ToolSettings]:
    """Migrate, set every tool role's password, load demo data; return each tool's settings.

    `upstreams` maps upstream names to base URLs (see `upstream_services`).
    """
    specs = tuple(specs)
    upstreams = upstreams or {}
    every = role_passwords(spec.db_role for spec in specs if spec.needs_database)
    passwords = {spec.db_role: every[spec.db_role] for spec in specs if spec.needs_database}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        migrate(conn, specs, passwords)
        if with_demo_data:
            seed(conn)
    return tool_settings(admin_url, passwords, upstreams, specs)
