"""API Lambda: sessions as resources. Create (202 + queue), read, list events, cancel.

The principal comes from the authorizer's claims, never from the body. A session that is not
the caller's is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import re
import time
import uuid
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from orchestrator import wiring
from orchestrator.principal import principal_from_claims
from orchestrator.queue import WorkQueue
from orchestrator.sessions import (
    SessionNotFound,
    SessionOptions,
    SessionRecord,
    SessionRepository,
)
from orchestrator.types import Principal

logger = Logger(service="lockgate-api")
app = APIGatewayRestResolver(enable_validation=True)
_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait=(\d+)")


class CreateSession(BaseModel):
    """Body of POST /sessions."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1, max_length=4000, description="What the user asks for.")
    options: SessionOptions = SessionOptions()


@cache
def _services() -> tuple[SessionRepository, WorkQueue]:
    config = wiring.settings()
    return wiring.repository(config), wiring.queue(config)


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def _caller() -> Principal | None:
    return principal_from_claims(app.current_event.request_context.authorizer.claims)


def _own(session_id: str) -> SessionRecord | Response[Any]:
    """The caller's session, or the answer to give: 403 without identity, 404 if the session
    does not exist or is someone else's (the two look the same on purpose)."""
    caller = _caller()
    if caller is None:
        return _json(403, _FORBIDDEN)
    repo, _ = _services()
    try:
        record = repo.get(session_id)
    except SessionNotFound:
        return _json(404, _NOT_FOUND)
    return record if record.owned_by(caller) else _json(404, _NOT_FOUND)


def _links(session_id: str) -> dict[str, str]:
    return {"self": f"/sessions/{session_id}", "events": f"/sessions/{session_id}/events"}


def _wait_seconds() -> float:
    match = _PREFER_WAIT.search(
        app.current_event.headers.get("Prefer") or app.current_event.headers.get("prefer") or ""
    )
    return min(float(match.group(1)), wiring.settings().max_wait_seconds) if match else 0.0


_FORBIDDEN = {"message": "the caller's identity has no tenant or user"}
_NOT_FOUND = {"message": "no such session"}


@app.post("/sessions")
def create_session(body: CreateSession) -> Response[Any]:
    """Record the session, enqueue it, answer 202 (or 200 if `Prefer: wait=N` and it finished)."""
    caller = _caller()
    if caller is None:
        return _json(403, _FORBIDDEN)
    config = wiring.settings()
    if not config.model_allowed(body.options.model):
        allowed = sorted({config.model_id, *config.allowed_models})
        return _json(
            422, {"message": f"model {body.options.model!r} is not allowed", "allowed": allowed}
        )
    repo, work = _services()
    now = time.time()
    record = SessionRecord(
        session_id=uuid.uuid4().hex,
        principal=caller,
        request=body.request,
        options=body.options,
        created_at=now,
        updated_at=now,
    )
    repo.create(record)
    work.send(record.session_id)
    logger.info("session queued", extra={"session_id": record.session_id})
    deadline = now + _wait_seconds()
    delay = 0.1
    while time.time() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.time())))
        delay = min(delay * 2, 0.5)
        current = repo.get(record.session_id)
        if current.status.terminal:
            return _json(200, {**current.view(), "links": _links(record.session_id)})
    location = f"/sessions/{record.session_id}"
    return _json(202, {**record.view(), "links": _links(record.session_id)}, {"Location": location})


@app.get("/sessions/<session_id>")
def get_session(session_id: str) -> Response[Any]:
    """Status, answer or partial result, steps, tokens and cost so far."""
    record = _own(session_id)
    if isinstance(record, Response):
        return record
    return _json(200, {**record.view(), "links": _links(session_id)})


@app.get("/sessions/<session_id>/events")
def list_events(
    session_id: str,
    after: Annotated[int, Query(ge=0, description="Return events numbered after this one.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response[Any]:
    """Step events (proposals, validation errors, tool results, retries, final) after `after`."""
    record = _own(session_id)
    if isinstance(record, Response):
        return record
    repo, _ = _services()
    events = repo.events(session_id, after, limit)
    return _json(
        200,
        {
            "session_id": session_id,
            "status": record.status.value,
            "events": [e.model_dump() for e in events],
            "next_after": events[-1].seq if events else after,
        },
    )


@app.post("/sessions/<session_id>/cancel")
def cancel_session(session_id: str) -> Response[Any]:
    """Cancel: a queued session at once, a running one before its next step."""
    owned = _own(session_id)
    if isinstance(owned, Response):
        return owned
    repo, _ = _services()
    record = repo.request_cancel(session_id, time.time())
    return _json(202, {**record.view(), "cancel_requested": True, "links": _links(session_id)})


def openapi_document() -> str:
    """The OpenAPI document generated from the routes and their Pydantic models."""
    return app.get_openapi_json_schema(title="Lockgate sessions API", version="1.0.0")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
