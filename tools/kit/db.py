"""A tool's own PostgreSQL connection: credentials from its own secret, reused while warm.

Tools use pg8000, a pure-Python driver: a tool's package stays small (no bundled libpq and
OpenSSL) and its cold start light. The SQL a tool writes is plain DB-API with `%s` parameters.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import pg8000.dbapi
from pg8000.exceptions import DatabaseError, InterfaceError

from tools.kit.envelope import ErrorKind, Principal
from tools.kit.settings import DatabaseCredentials, ToolSettings

__all__ = [
    "Cursor",
    "DatabaseError",
    "DatabaseUnavailable",
    "ToolDatabase",
    "failure_kind",
    "is_outage",
    "sqlstate",
]

pg8000.dbapi.paramstyle = "format"  # `%s` placeholders, as everywhere in Lockgate

# The server is going away, restarting or full: it is unavailable, not merely busy.
_OUTAGE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# Serialization failure, deadlock, lock not available, statement timeout: contention.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", *_OUTAGE_SQLSTATES}
_FORBIDDEN_SQLSTATES = {"42501"}


class Cursor(Protocol):
    """The DB-API cursor a tool function receives."""

    rowcount: int

    def execute(self, operation: str, args: Any = ...) -> Any:
        """Run one statement with `%s` parameters."""
        ...

    def fetchone(self) -> Any:
        """The next row, or None."""
        ...

    def fetchall(self) -> Any:
        """The remaining rows."""
        ...


class DatabaseUnavailable(Exception):
    """The database could not be reached; the call may succeed if retried."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a server error, if it is one."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        code = exc.args[0].get("C")
        return str(code) if code else None
    return None


def failure_kind(exc: Exception) -> ErrorKind | None:
    """What a database exception means to the caller: retry later, not allowed, or a bug."""
    if isinstance(exc, DatabaseUnavailable | InterfaceError | ConnectionError | TimeoutError):
        return ErrorKind.TRANSIENT
    state = sqlstate(exc)
    if state in _TRANSIENT_SQLSTATES:
        return ErrorKind.TRANSIENT
    if state in _FORBIDDEN_SQLSTATES:
        return ErrorKind.FORBIDDEN
    return None


def is_outage(exc: Exception) -> bool:
    """True when the database itself is unreachable or refusing connections, as opposed to a
    transaction that lost a race (which a retry usually wins)."""
    if isinstance(exc, DatabaseUnavailable | InterfaceError | ConnectionError | TimeoutError):
        return True
    return sqlstate(exc) in _OUTAGE_SQLSTATES


def _tls(credentials: DatabaseCredentials) -> ssl.SSLContext | None:
    if not credentials.ssl:
        return None
    # Encrypted inside the VPC; the RDS certificate authority is not in the runtime's trust
    # store, so the server is identified by its address and security group, not its certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ToolDatabase:
    """Owns one connection for one tool, opened lazily and reopened after a failure."""

    def __init__(self, settings: ToolSettings) -> None:
        self._settings = settings
        self._conn: pg8000.dbapi.Connection | None = None

    def _credentials(self, *, refresh: bool) -> DatabaseCredentials:
        if self._settings.database is not None:
            return self._settings.database
        if self._settings.db_secret_id is None:
            raise RuntimeError("tool has no database credentials: set LOCKGATE_DB_SECRET_ID")
        from aws_lambda_powertools.utilities import parameters

        from tools.kit.redact import hide_secret_values

        hide_secret_values()

        secret: dict[str, Any] = parameters.get_secret(
            self._settings.db_secret_id,
            transform="json",
            max_age=self._settings.secret_max_age_seconds,
            force_fetch=refresh,
        )
        return DatabaseCredentials.model_validate(secret)

    def _open(self, credentials: DatabaseCredentials) -> pg8000.dbapi.Connection:
        return pg8000.dbapi.connect(
            user=credentials.username,
            password=credentials.password.get_secret_value(),
            host=credentials.host,
            port=credentials.port,
            database=credentials.dbname,
            ssl_context=_tls(credentials),
            timeout=self._settings.connect_timeout_seconds,
            application_name="lockgate-tool",
        )

    def _connect(self) -> pg8000.dbapi.Connection:
        try:
            return self._open(self._credentials(refresh=False))
        except (InterfaceError, DatabaseError, OSError):
            # The secret may have been rotated since it was cached: fetch it once more.
            try:
                return self._open(self._credentials(refresh=True))
            except (InterfaceError, DatabaseError, OSError) as exc:
                raise DatabaseUnavailable(sqlstate(exc) or "connection failed") from exc

    @contextmanager
    def transaction(self, principal: Principal) -> Iterator[Cursor]:
        """One transaction, scoped to the principal's tenant for row-level security."""
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        cur = conn.cursor()
        try:
            cur.execute(
                "SELECT set_config('lockgate.tenant_id', %s, true),"
                " set_config('lockgate.user_id', %s, true)",
                (principal.tenant_id, principal.user_id),
            )
            yield cur
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except (InterfaceError, DatabaseError, OSError):
                self.close()  # the connection is gone; the next call reconnects
            raise
        finally:
            cur.close()

    def close(self) -> None:
        """Close the connection (tests, local shutdown, after a broken connection)."""
        if self._conn is not None:
            with suppress(InterfaceError, DatabaseError, OSError):
                self._conn.close()
            self._conn = None
