"""What the model is shown: the request, then each tool call with its result as data.

A tool result is rendered once, when its step is applied, into a size-capped JSON value;
the model sees that value inside its provider's tool-result block, never as instructions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.types import Observation, Step, ToolCall

if TYPE_CHECKING:
    from orchestrator.ports import ModelRequest


@dataclass(frozen=True)
class Exchange:
    """One past tool call and the result the model is shown for it."""

    call: ToolCall
    result: dict[str, Any]


def shown_result(observation: Observation, max_chars: int) -> dict[str, Any]:
    """The observation as the model sees it; an oversized output becomes a marked preview."""
    if observation.status == "ok":
        shown: dict[str, Any] = {"status": "ok", "output": observation.output}
    else:
        shown = {
            "status": "error",
            "error_kind": str(observation.error_kind),
            "message": observation.message,
        }
        if observation.details:
            shown["details"] = observation.details
    text = json.dumps(shown, default=str, ensure_ascii=False)
    if len(text) <= max_chars:
        return shown
    return {
        "status": observation.status,
        "truncated": True,
        "size_chars": len(text),
        "preview": text[: max(0, max_chars - 200)],
    }


def exchanges(steps: Sequence[Step]) -> list[Exchange]:
    """The tool calls so far with their shown results (final answers end sessions)."""
    return [
        Exchange(step.turn.decision, step.shown)
        for step in steps
        if isinstance(step.turn.decision, ToolCall) and step.shown is not None
    ]


def estimate_tokens(request: ModelRequest) -> int:
    """Rough prompt size in tokens: the text a provider would be sent, divided by four."""
    chars = len(request.system) + len(request.request)
    for spec in request.tools:
        chars += len(spec.name) + len(spec.description) + len(json.dumps(spec.input_schema()))
    for exchange in request.exchanges:
        chars += len(exchange.call.tool) + len(exchange.call.arguments)
        chars += len(json.dumps(exchange.result, default=str))
    return max(1, chars // 4)
