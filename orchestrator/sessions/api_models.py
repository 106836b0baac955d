"""The sessions API's request and response bodies: what the OpenAPI document promises and
what the handler sends are the same models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.sessions.record import SessionOptions, SessionRecord, StoredEvent


class CreateSession(BaseModel):
    """Body of POST /sessions (strict, as the API Gateway model that checks it first)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    request: str = Field(min_length=1, max_length=4000, description="What the user asks for.")
    options: SessionOptions = SessionOptions()


class UsageView(BaseModel):
    """Tokens consumed (prompt-cache reads and writes counted apart from other input)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class Links(BaseModel):
    """Where to read the session and its events."""

    self: str
    events: str


class SessionView(BaseModel):
    """A session as the API shows it to its owner."""

    session_id: str
    status: Literal["queued", "running", "completed", "stopped", "cancelled", "failed"]
    outcome: str | None = Field(description="How the loop ended, once it has.")
    reason: str | None
    answer: str | None
    partial_result: list[dict[str, Any]] = Field(
        description="Outputs of the successful tool calls so far."
    )
    steps: int
    usage: UsageView
    usage_by_model: dict[str, UsageView]
    cost_usd: float
    retries: int
    created_at: float
    updated_at: float
    links: Links
    cancel_requested: bool | None = None

    @classmethod
    def of(cls, record: SessionRecord, *, cancel_requested: bool | None = None) -> SessionView:
        """The view of a stored record."""
        links = Links(
            self=f"/sessions/{record.session_id}", events=f"/sessions/{record.session_id}/events"
        )
        return cls.model_validate(
            {**record.view(), "links": links, "cancel_requested": cancel_requested}
        )


class SessionSummary(BaseModel):
    """One of the caller's sessions in a listing."""

    session_id: str
    status: Literal["queued", "running", "completed", "stopped", "cancelled", "failed"]
    request: str
    reason: str | None
    created_at: float
    updated_at: float
    links: Links

    @classmethod
    def of(cls, record: SessionRecord) -> SessionSummary:
        """The summary of a stored record."""
        return cls(
            session_id=record.session_id,
            status=record.status.value,
            request=record.request,
            reason=record.reason,
            created_at=record.created_at,
            updated_at=record.updated_at,
            links=Links(
                self=f"/sessions/{record.session_id}",
                events=f"/sessions/{record.session_id}/events",
            ),
        )


class SessionPage(BaseModel):
    """A page of the caller's sessions, newest first."""

    sessions: list[SessionSummary]
    next_before: float | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )

    @classmethod
    def of(cls, records: Sequence[SessionRecord], limit: int) -> SessionPage:
        """The page, and where the next one starts if this one is full."""
        return cls(
            sessions=[SessionSummary.of(r) for r in records],
            next_before=records[-1].created_at if len(records) == limit else None,
        )


class EventView(BaseModel):
    """One progress event, numbered from 1 per session."""

    seq: int
    step: int
    kind: str
    data: dict[str, Any]


class EventsPage(BaseModel):
    """A page of a session's events."""

    session_id: str
    status: str
    events: list[EventView]
    next_after: int = Field(description="Pass as `after` to read the events that follow.")

    @classmethod
    def of(cls, record: SessionRecord, events: Sequence[StoredEvent], after: int) -> EventsPage:
        """The page of `events` read after `after`."""
        return cls(
            session_id=record.session_id,
            status=record.status.value,
            events=[EventView.model_validate(e.model_dump()) for e in events],
            next_after=events[-1].seq if events else after,
        )


class ErrorBody(BaseModel):
    """An error the caller can act on."""

    message: str


class FieldError(BaseModel):
    """One invalid field: where it is, what is wrong, the error type."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """422: the request was understood but is not valid."""

    message: str
    errors: list[FieldError] = Field(default_factory=list)
    allowed: list[str] | None = None

    @classmethod
    def from_errors(cls, errors: Sequence[Any]) -> ValidationErrorBody:
        """From pydantic's errors (the rejected input itself is not echoed)."""
        return cls(
            message="invalid request",
            errors=[
                FieldError(
                    loc=[part if isinstance(part, int) else str(part) for part in e["loc"]],
                    msg=str(e.get("msg", "")),
                    type=str(e["type"]),
                )
                for e in errors
            ],
        )

    @classmethod
    def model_not_allowed(cls, model: str | None, allowed: list[str]) -> ValidationErrorBody:
        """The options named a model the deployment does not offer."""
        return cls(message=f"model {model!r} is not allowed", allowed=allowed)


_RESPONSES: dict[int, tuple[str, type[BaseModel]]] = {
    200: ("The session, finished.", SessionView),
    202: ("The session, accepted and not finished.", SessionView),
    400: ("The body is not standard JSON, not UTF-8, or nests too deep.", ErrorBody),
    409: ("The Idempotency-Key was used before with another request.", ErrorBody),
    413: ("The body is too large.", ErrorBody),
    415: ("The body is not application/json.", ErrorBody),
    401: ("No valid bearer token (answered by the authorizer).", ErrorBody),
    403: ("The token's identity has no tenant or user.", ErrorBody),
    404: ("No such session, or not the caller's.", ErrorBody),
    422: ("Invalid request.", ValidationErrorBody),
}


def responses(*codes: int, ok: type[BaseModel] | None = None) -> dict[int, Any]:
    """OpenAPI responses of a route, by status code."""
    out: dict[int, Any] = {}
    for code in codes:
        description, model = _RESPONSES[code]
        if ok is not None and code in {200, 202}:
            model = ok
        out[code] = {"description": description, "content": {"application/json": {"model": model}}}
    return out
