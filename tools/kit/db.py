"""A tool's own PostgreSQL connection: credentials from its own secret, reused while warm."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo

from tools.kit.envelope import ErrorKind, Principal
from tools.kit.settings import ToolSettings


class DatabaseUnavailable(Exception):
    """The database could not be reached; the call may succeed if retried."""


_TRANSIENT = (
    DatabaseUnavailable,
    psycopg.OperationalError,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
)


def failure_kind(exc: Exception) -> ErrorKind | None:
    """What a database exception means to the caller: retry later, not allowed, or a bug."""
    if isinstance(exc, _TRANSIENT):
        return ErrorKind.TRANSIENT
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return ErrorKind.FORBIDDEN
    return None


class ToolDatabase:
    """Owns one connection for one tool, opened lazily and reopened after a failure."""

    def __init__(self, settings: ToolSettings) -> None:
        self._settings = settings
        self._conn: psycopg.Connection[Any] | None = None

    def _conninfo(self, *, refresh: bool) -> str:
        if self._settings.db_dsn is not None:
            return self._settings.db_dsn.get_secret_value()
        if self._settings.db_secret_id is None:
            raise RuntimeError("tool has no database credentials: set LOCKGATE_DB_SECRET_ID")
        from aws_lambda_powertools.utilities import parameters

        secret: dict[str, Any] = parameters.get_secret(
            self._settings.db_secret_id,
            transform="json",
            max_age=self._settings.secret_max_age_seconds,
            force_fetch=refresh,
        )
        return make_conninfo(
            host=str(secret["host"]),
            port=str(secret.get("port", 5432)),
            dbname=str(secret.get("dbname", "lockgate")),
            user=str(secret["username"]),
            password=str(secret["password"]),
        )

    def _connect(self) -> psycopg.Connection[Any]:
        timeout = self._settings.connect_timeout_seconds
        try:
            return psycopg.connect(
                self._conninfo(refresh=False), autocommit=True, connect_timeout=timeout
            )
        except psycopg.OperationalError:
            # The secret may have been rotated since it was cached: fetch it once more.
            try:
                return psycopg.connect(
                    self._conninfo(refresh=True), autocommit=True, connect_timeout=timeout
                )
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(str(exc.sqlstate or "connection failed")) from exc

    def connection(self) -> psycopg.Connection[Any]:
        """The warm connection, reopened if the previous one broke."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def transaction(self, principal: Principal) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction, scoped to the principal's tenant for row-level security."""
        conn = self.connection()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('lockgate.tenant_id', %s, true),"
                " set_config('lockgate.user_id', %s, true)",
                (principal.tenant_id, principal.user_id),
            )
            yield cur

    def close(self) -> None:
        """Close the connection (tests and local shutdown)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
