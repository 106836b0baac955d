"""Read a tool's response envelope into an observation; anything malformed is an error."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from orchestrator.types import ErrorKind, Observation
from tools.kit.envelope import OkResponse, ToolResponse

_RESPONSE: TypeAdapter[ToolResponse] = TypeAdapter(ToolResponse)


def observation_from_response(payload: Any) -> Observation:
    """Turn `{status: ok, output}` / `{status: error, error}` into an observation."""
    try:
        response = _RESPONSE.validate_python(payload)
    except ValidationError:
        return Observation(
            status="error",
            error_kind=ErrorKind.INTERNAL,
            message="the tool returned a malformed response",
        )
    if isinstance(response, OkResponse):
        return Observation(status="ok", output=response.output, replayed=response.replayed)
    error = response.error
    return Observation(
        status="error", error_kind=error.kind, message=error.message, details=error.details
    )


def failure(kind: ErrorKind, message: str) -> Observation:
    """An observation for a failure outside the tool (transport, throttling, crash)."""
    return Observation(status="error", error_kind=kind, message=message)
