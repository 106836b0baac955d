"""A session as a durable resource: its record, options, events and the errors of its store.

A session is created by the API (status `queued`), advanced by exactly one worker at a time
(a lease, taken and checked with conditional writes), checkpointed after every step together
with that step's events, and ends `completed`, `stopped` (a limit or loop), `cancelled` or
`failed` (model error, or its message reached the dead-letter queue).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.limits import MAX_STEPS_CEILING, Limits
from orchestrator.records import as_data
from orchestrator.types import Outcome, Principal, SessionState, Usage


class Status(StrEnum):
    """Where a session is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """No worker will touch the session again."""
        return self not in {Status.QUEUED, Status.RUNNING}


def status_of(outcome: Outcome) -> Status:
    """The status a finished session's outcome maps to."""
    if outcome is Outcome.COMPLETED:
        return Status.COMPLETED
    if outcome is Outcome.CANCELLED:
        return Status.CANCELLED
    if outcome is Outcome.ERROR:
        return Status.FAILED
    return Status.STOPPED


class SessionOptions(BaseModel):
    """What a caller may choose per session, within what the deployment allows. Strict, as the
    API Gateway model is: `"5"` or `true` is not a number of steps."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS_CEILING)
    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)
    max_seconds: float | None = Field(default=None, gt=0)
    model: str | None = Field(default=None, min_length=1, max_length=200)

    def limits(self, base: Limits) -> Limits:
        """The deployment's limits, tightened (never loosened) by these options."""
        update: dict[str, Any] = {}
        if self.max_steps is not None:
            update["max_steps"] = min(self.max_steps, base.max_steps)
        for name in ("max_tokens", "max_usd", "max_seconds"):
            mine, theirs = getattr(self, name), getattr(base, name)
            if mine is not None:
                update[name] = mine if theirs is None else min(mine, theirs)
        return base.model_copy(update=update)


class SessionRecord(BaseModel):
    """A session as stored: who owns it, where it is, and its last checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    principal: Principal
    request: str
    options: SessionOptions = SessionOptions()
    status: Status = Status.QUEUED
    version: int = 0
    created_at: float
    updated_at: float
    lease_owner: str | None = None
    lease_until: float = 0.0
    cancel_requested: bool = False
    reason: str | None = None
    events_count: int = 0
    state: SessionState | None = None

    @property
    def owner(self) -> str:
        """The owner key, `tenant#user`: what listing a caller's sessions looks up."""
        return owner_key(self.principal)

    def owned_by(self, principal: Principal) -> bool:
        """Only the user who created a session (in their tenant) may see or cancel it."""
        return (
            self.principal.user_id == principal.user_id
            and self.principal.tenant_id == principal.tenant_id
        )

    def view(self) -> dict[str, Any]:
        """What GET /sessions/{id} returns."""
        state = self.state
        return {
            "session_id": self.session_id,
            "status": self.status.value,
            "outcome": None if state is None or state.outcome is None else state.outcome.value,
            "reason": self.reason or (state.reason if state else None),
            "answer": state.answer if state else None,
            "partial_result": state.partial_result() if state else [],
            "steps": len(state.steps) if state else 0,
            "usage": as_data(state.usage if state else Usage()),
            "usage_by_model": as_data(state.usage_by_model) if state else {},
            "cost_usd": round(state.cost_usd, 6) if state else 0.0,
            "retries": state.retries if state else 0,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def owner_key(principal: Principal) -> str:
    """`tenant#user`: sessions are listed per owner."""
    return f"{principal.tenant_id}#{principal.user_id}"


class StoredEvent(BaseModel):
    """A progress event as stored and listed: numbered from 1 per session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    step: int
    kind: str
    data: dict[str, Any]


class SessionNotFound(Exception):
    """No such session (or not the caller's: the two are indistinguishable on purpose)."""


class SessionExists(Exception):
    """A session with this id was created before (an id is created once)."""


class LeaseHeld(Exception):
    """Another worker is advancing this session; try again later."""


class LeaseLost(Exception):
    """The checkpoint was refused: the lease expired or another worker took the session."""


class CancelRequested(Exception):
    """The checkpoint was refused because the user cancelled the session."""
