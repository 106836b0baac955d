"""API Lambda: sessions as resources. Each route is the caller, one service call, one answer.

The principal comes from the authorizer's claims, never from the body. A session that is not
the caller's is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from orchestrator import wiring
from orchestrator.principal import principal_from_claims
from orchestrator.resolver import ThreadSafeRestResolver
from orchestrator.sessions.api_models import (
    CreateSession,
    ErrorBody,
    EventsPage,
    SessionPage,
    SessionView,
    ValidationErrorBody,
    responses,
)
from orchestrator.sessions.http_input import BadRequest, checked_event, header_values, prefer_wait
from orchestrator.sessions.record import SessionNotFound
from orchestrator.sessions.service import (
    IDEMPOTENCY_KEY,
    IdempotencyConflict,
    ModelNotAllowed,
    SessionService,
)
from orchestrator.types import Principal

logger = Logger(service="lockgate-api")
app = ThreadSafeRestResolver(enable_validation=True)


@cache
def _service() -> SessionService:
    return wiring.session_service(wiring.settings())


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json")
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


class _NoIdentity(Exception):
    """The authorizer passed claims without a tenant or user."""


def _caller() -> Principal:
    caller = principal_from_claims(app.current_event.request_context.authorizer.claims)
    if caller is None:
        raise _NoIdentity
    return caller


def _idempotency_key() -> str | None:
    values = header_values(app.current_event.raw_event, "Idempotency-Key")
    if not values:
        return None
    if len(values) > 1 or not IDEMPOTENCY_KEY.match(values[0]):
        raise BadRequest(400, "Idempotency-Key must be one value of 1-255 visible ASCII characters")
    return values[0]


@app.exception_handler(_NoIdentity)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _no_identity(_: _NoIdentity) -> Response[Any]:
    return _json(403, ErrorBody(message="the caller's identity has no tenant or user"))


@app.exception_handler(SessionNotFound)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _not_found(_: SessionNotFound) -> Response[Any]:
    return _json(404, ErrorBody(message="no such session"))


@app.exception_handler(ModelNotAllowed)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _model_not_allowed(exc: ModelNotAllowed) -> Response[Any]:
    return _json(422, ValidationErrorBody.model_not_allowed(exc.model, exc.allowed))


@app.exception_handler(IdempotencyConflict)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _conflict(_: IdempotencyConflict) -> Response[Any]:
    return _json(409, ErrorBody(message="this Idempotency-Key was used with another request"))


@app.exception_handler(BadRequest)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _bad_request(exc: BadRequest) -> Response[Any]:
    return _json(exc.status, ErrorBody(message=exc.message))


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def _invalid(exc: RequestValidationError) -> Response[Any]:
    return _json(422, ValidationErrorBody.from_errors(exc.errors()))


@app.post("/sessions", responses=responses(202, 200, 400, 401, 403, 409, 413, 415, 422))
def create_session(body: CreateSession) -> Response[SessionView]:
    """Record the session, enqueue it, answer 202 (or 200 if `Prefer: wait=N` and it finished).
    With an `Idempotency-Key`, a retry answers with the session the first attempt created."""
    service = _service()
    record, created = service.create(_caller(), body.request, body.options, _idempotency_key())
    if created:
        logger.info("session queued", extra={"session_id": record.session_id})
    waited = service.wait(record, prefer_wait(app.current_event.raw_event))
    if waited.status.terminal:
        return _json(200, SessionView.of(waited))
    return _json(202, SessionView.of(waited), {"Location": f"/sessions/{record.session_id}"})


@app.get("/sessions", responses=responses(200, 401, 403, 422, ok=SessionPage))
def list_sessions(
    limit: Annotated[int, Query(ge=1, le=100, description="Sessions per page.")] = 20,
    before: Annotated[
        float | None, Query(description="Only sessions created before this time (next_before).")
    ] = None,
) -> Response[SessionPage]:
    """The caller's own sessions, newest first, a page at a time."""
    return _json(200, SessionPage.of(_service().list_owned(_caller(), limit, before), limit))


@app.get("/sessions/<session_id>", responses=responses(200, 401, 403, 404, 422))
def get_session(session_id: str) -> Response[SessionView]:
    """Status, answer or partial result, steps, tokens and cost so far."""
    return _json(200, SessionView.of(_service().owned(_caller(), session_id)))


@app.get(
    "/sessions/<session_id>/events", responses=responses(200, 401, 403, 404, 422, ok=EventsPage)
)
def list_events(
    session_id: str,
    after: Annotated[int, Query(ge=0, description="Return events numbered after this one.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response[EventsPage]:
    """Step events (proposals, validation errors, tool results, retries, final) after `after`."""
    record, events = _service().events(_caller(), session_id, after, limit)
    return _json(200, EventsPage.of(record, events, after))


@app.post("/sessions/<session_id>/cancel", responses=responses(202, 401, 403, 404, 422))
def cancel_session(session_id: str) -> Response[SessionView]:
    """Cancel: a queued session at once, a running one before its next step."""
    record = _service().cancel(_caller(), session_id)
    return _json(202, SessionView.of(record, cancel_requested=True))


def openapi_document() -> str:
    """The OpenAPI document generated from the routes and their Pydantic models."""
    return app.get_openapi_json_schema(
        title="Lockgate sessions API",
        version="1.0.0",
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearer": []}],
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: malformed input is answered before any route runs."""
    try:
        checked = checked_event(event)
    except BadRequest as exc:
        return exc.response()
    return app.resolve(checked, context)
