"""The wire format between the orchestrator and a tool, identical in Lambda and in-process."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Principal(BaseModel):
    """Who the agent acts for. Set by code from the authenticated request, never by the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=128)
    tenant_id: str = Field(min_length=1, max_length=128)
    scopes: frozenset[str] = frozenset()


class Envelope(BaseModel):
    """One tool invocation: the principal and idempotency key come from the orchestrator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: Principal
    input: dict[str, Any]
    idempotency_key: str = Field(min_length=1, max_length=200)


class ErrorKind(StrEnum):
    """Every way a tool call can fail, as the orchestrator understands it."""

    VALIDATION = "validation"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TRANSIENT = "transient"
    INTERNAL = "internal"


class ToolError(BaseModel):
    """An expected failure, returned as a value. `message` is written for the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ErrorKind
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class OkResponse(BaseModel):
    """A successful call and its typed output, serialized."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["ok"] = "ok"
    output: dict[str, Any]
    replayed: bool = False


class ErrorResponse(BaseModel):
    """A failed call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["error"] = "error"
    error: ToolError


# `status` says which model applies: a response is validated against that one, not tried
# against both.
ToolResponse = Annotated[OkResponse | ErrorResponse, Field(discriminator="status")]
