"""Turn a contract and one function into a Lambda handler with the kit's guarantees.

Every call: parse the envelope, check the principal's scopes, validate the input again
(the orchestrator's check is not trusted), run in one transaction scoped to the tenant,
record the idempotency key with the write, and answer with `ok` or a typed `error`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec
from tools.kit.envelope import (
    Envelope,
    ErrorKind,
    ErrorResponse,
    OkResponse,
    Principal,
    ToolError,
    ToolResponse,
)
from tools.kit.settings import ToolSettings
from tools.kit.validation import describe_errors

if TYPE_CHECKING:  # the driver is imported on first database use, not at cold start
    from tools.kit.db import Cursor, ToolDatabase

InputT = TypeVar("InputT", bound=StrictInput)
OutputT = TypeVar("OutputT", bound=ToolOutput)

# stderr: Lambda sends it to CloudWatch as it does stdout, and locally stdout is the command's
# own output (`lockgate run --json` prints a document there that must stay pure JSON).
logger = Logger(service="lockgate-tool", stream=sys.stderr)


@dataclass(frozen=True)
class ToolContext:
    """What a tool function receives besides its input: trusted values, its settings and,
    for tools that declare database privileges, its transaction."""

    principal: Principal
    idempotency_key: str
    settings: ToolSettings
    _cur: Cursor | None = None

    @property
    def cur(self) -> Cursor:
        """The tool's transaction (only for tools that declare database privileges)."""
        if self._cur is None:
            raise RuntimeError("this tool declares no database privileges")
        return self._cur


class _Abort(Exception):
    """Roll the transaction back and answer with this error."""

    def __init__(self, error: ToolError) -> None:
        super().__init__(error.message)
        self.error = error


def _error(kind: ErrorKind, message: str, **details: Any) -> ErrorResponse:
    return ErrorResponse(error=ToolError(kind=kind, message=message, details=details))


def _request_hash(principal: Principal, data: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"tenant": principal.tenant_id, "user": principal.user_id, "input": data},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ToolHandler(Generic[InputT, OutputT]):
    """The Lambda entry point of one tool. Calling it with an event returns the response dict."""

    def __init__(
        self,
        spec: ToolSpec,
        run: Callable[[ToolContext, InputT], OutputT | ToolError],
        settings: ToolSettings | None = None,
    ) -> None:
        self.spec = spec
        self._run = run
        self._settings = settings
        self._db: ToolDatabase | None = None

    def bind(self, settings: ToolSettings) -> ToolHandler[InputT, OutputT]:
        """The same handler with explicit settings instead of the Lambda environment."""
        return ToolHandler(self.spec, self._run, settings)

    @property
    def db(self) -> ToolDatabase:
        """The tool's database, created on first use (cold start) and kept while warm."""
        if self._db is None:
            from tools.kit.db import ToolDatabase

            self._db = ToolDatabase(self.settings)
        return self._db

    def __call__(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        response = self.handle(event)
        outcome = response.status if isinstance(response, OkResponse) else response.error.kind
        logger.info("tool call", extra={"tool": self.spec.name, "outcome": str(outcome)})
        return response.model_dump(mode="json")

    def handle(self, event: Mapping[str, Any]) -> ToolResponse:
        """Answer one envelope. Expected failures are values; a bug becomes `internal`."""
        try:
            envelope = Envelope.model_validate(dict(event))
        except ValidationError as exc:
            message, details = describe_errors(Envelope, exc)
            return _error(ErrorKind.VALIDATION, "malformed envelope: " + message, errors=details)
        missing = self.spec.scopes - envelope.principal.scopes
        if missing:
            return _error(
                ErrorKind.FORBIDDEN,
                f"the user may not use {self.spec.name}: missing scope {', '.join(sorted(missing))}",
            )
        try:
            data = self.spec.input.model_validate(envelope.input)
        except ValidationError as exc:
            message, details = describe_errors(self.spec.input, exc)
            return _error(ErrorKind.VALIDATION, message, errors=details)
        try:
            return self._execute(envelope, data)  # type: ignore[arg-type]  # spec.input is InputT
        except _Abort as abort:
            return ErrorResponse(error=abort.error)
        except Exception as exc:
            kind = self._database_failure(exc)
            if kind is ErrorKind.TRANSIENT:
                self.db.close()
                if self._database_outage(exc):
                    logger.warning("database unavailable", extra={"tool": self.spec.name})
                    # `dependency` tells the orchestrator that no other call can succeed
                    # either: once its retries are spent, the session ends with this reason.
                    return _error(
                        kind,
                        "the database is temporarily unavailable; retry",
                        dependency="database",
                    )
                logger.warning("database busy", extra={"tool": self.spec.name})
                return _error(kind, "the database is busy (a conflicting transaction); retry")
            if kind is ErrorKind.FORBIDDEN:
                logger.exception("privilege denied", extra={"tool": self.spec.name})
                return _error(kind, "the tool's database role may not do this")
            logger.exception("tool failed", extra={"tool": self.spec.name})
            return _error(ErrorKind.INTERNAL, f"{self.spec.name} failed unexpectedly")

    def _database_failure(self, exc: Exception) -> ErrorKind | None:
        if not self.spec.needs_database:
            return None
        from tools.kit.db import failure_kind

        return failure_kind(exc)

    @staticmethod
    def _database_outage(exc: Exception) -> bool:
        from tools.kit.db import is_outage

        return is_outage(exc)

    @property
    def settings(self) -> ToolSettings:
        """The settings this handler runs with (explicit, or the Lambda environment)."""
        if self._settings is None:
            self._settings = ToolSettings.from_env()
        return self._settings

    def _execute(self, envelope: Envelope, data: InputT) -> ToolResponse:
        if not self.spec.needs_database:
            ctx = ToolContext(envelope.principal, envelope.idempotency_key, self.settings)
            result = self._run(ctx, data)
            if isinstance(result, ToolError):
                return ErrorResponse(error=result)
            return OkResponse(output=result.model_dump(mode="json"))
        with self.db.transaction(envelope.principal) as cur:
            if self.spec.writes:
                request_hash = _request_hash(envelope.principal, data.model_dump(mode="json"))
                replay = self._claim(cur, envelope.idempotency_key, request_hash)
                if replay is not None:
                    return replay
            ctx = ToolContext(envelope.principal, envelope.idempotency_key, self.settings, cur)
            result = self._run(ctx, data)
            if isinstance(result, ToolError):
                raise _Abort(result)
            response = OkResponse(output=result.model_dump(mode="json"))
            if self.spec.writes:
                cur.execute(
                    "UPDATE lockgate_idempotency SET response = %s::jsonb WHERE key = %s",
                    (response.model_dump_json(), envelope.idempotency_key),
                )
            return response

    @staticmethod
    def _claim(cur: Cursor, key: str, request_hash: str) -> ToolResponse | None:
        """Record the key in this transaction; if it exists, answer with its first result."""
        cur.execute(
            "INSERT INTO lockgate_idempotency (key, request_hash) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            (key, request_hash),
        )
        if cur.rowcount == 1:
            return None
        cur.execute(
            "SELECT request_hash, response FROM lockgate_idempotency WHERE key = %s", (key,)
        )
        row = cur.fetchone()
        if row is None or row[1] is None:
            raise _Abort(ToolError(kind=ErrorKind.CONFLICT, message="call already in progress"))
        if row[0] != request_hash:
            raise _Abort(
                ToolError(
                    kind=ErrorKind.CONFLICT,
                    message="idempotency key reused with different input",
                )
            )
        return OkResponse.model_validate({**row[1], "replayed": True})


def tool_handler(
    spec: ToolSpec, run: Callable[[ToolContext, InputT], OutputT | ToolError]
) -> ToolHandler[InputT, OutputT]:
    """Build the Lambda handler for `spec` around `run`."""
    return ToolHandler(spec, run)
