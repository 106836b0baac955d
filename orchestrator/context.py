"""What the model is shown: the request, then each tool call with its result as data.

A tool result is rendered once, when its step is applied, into a size-capped JSON value;
the model sees that value inside its provider's tool-result block, never as instructions.

The prompt must not grow without bound. The system prompt and catalog stay fixed; the most
recent steps are shown verbatim; older results are replaced by a short preview that points
back to the step (`ref`), whose full result stays in the checkpointed session state. Both
forms are computed once per step, so building the prompt never re-renders history.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic_core import to_json

from orchestrator.catalog import provider_schema
from orchestrator.types import Exchange, FinalAnswer, Observation, Step, ToolCall

__all__ = [
    "Exchange",
    "Transcript",
    "compact_result",
    "dated_prompt",
    "estimate_tokens",
    "shown_result",
]

if TYPE_CHECKING:
    from orchestrator.ports import ModelRequest


def dated_prompt(base: str, now: float, time_zone: ZoneInfo) -> str:
    """The system prompt with today's date and the user's time zone: relative dates ("in 10
    days") are resolved from them, never from an example value in a tool description. (The
    few-shot guidance is each tool's description: its contract's example, marked as one.)"""
    return _dated_prompt(base, int(now // 60), time_zone)


@functools.lru_cache(maxsize=64)
def _dated_prompt(base: str, minute: int, time_zone: ZoneInfo) -> str:
    # Built once a minute per prompt: this runs every step.
    local = dt.datetime.fromtimestamp(minute * 60, time_zone)
    return (
        f"{base}\n\nToday is {local:%A} {local.date().isoformat()}; the user's time zone is "
        f"{time_zone.key} (local time {local:%H:%M}). Resolve relative dates from today. Values "
        "in tool descriptions and examples only show the format: never reuse them as facts; "
        f"take every value from the user's request or from tool results."
    )


def shown_result(
    observation: Observation, max_chars: int, note: str | None = None
) -> tuple[dict[str, Any], int]:
    """The observation as the model sees it, and its size in characters; an oversized output
    becomes a marked preview. `note` is Lockgate's own remark on the step (a call of the same
    turn that was not run, a write that is done)."""
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
    if note:
        shown["note"] = note
    text = to_json(shown, fallback=str).decode()
    if len(text) <= max_chars:
        return shown, len(text)
    preview = {
        "status": observation.status,
        "truncated": True,
        "size_chars": len(text),
        "preview": text[: max(0, max_chars - 200)],
    }
    return preview, max_chars


def compact_result(
    shown: dict[str, Any], shown_chars: int, index: int, max_chars: int
) -> dict[str, Any]:
    """An older result reduced to what the model needs to remember it by; never larger than
    the result itself."""
    if shown_chars <= max_chars:
        return shown
    if shown.get("status") == "error":
        message = str(shown.get("message") or "")
        compact = {
            "status": "error",
            "error_kind": shown.get("error_kind"),
            "message": message[:max_chars],
        }
    else:
        text = to_json(shown.get("output", shown.get("preview")), fallback=str).decode()
        compact = {"status": "ok", "ref": f"step {index + 1}", "preview": text[:max_chars] + "..."}
    return compact if len(to_json(compact, fallback=str).decode()) < shown_chars else shown


class Transcript:
    """The exchanges of one session, each built once in both forms and switched to its compact
    form once, so showing the history costs the same at step 45 as at step 5."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._seen = 0  # steps taken into account
        self._shown: list[Exchange] = []  # what the model is shown, in order
        # Per step: its position in _shown and its compact form (None: nothing shown).
        self._compact: list[tuple[int, Exchange] | None] = []
        self._compacted = 0  # steps whose compact form is swapped in

    def view(self, steps: Sequence[Step], keep_recent: int | None) -> list[Exchange]:
        """The tool calls so far with their shown results (final answers end sessions).

        With `keep_recent`, only that many latest steps keep their full result; older ones show
        their compact form. None shows everything verbatim (append-all).
        """
        if self._seen > len(steps):  # not this session's history: start over
            self._reset()
        for step in steps[self._seen :]:
            if step.shown is not None and step.compact is not None:
                call = step.turn.decision
                assert not isinstance(call, FinalAnswer)  # final answers end sessions
                self._compact.append((len(self._shown), Exchange(call=call, result=step.compact)))
                self._shown.append(Exchange(call=call, result=step.shown))
            else:
                self._compact.append(None)
        self._seen = len(steps)
        cutoff = 0 if keep_recent is None else max(0, len(steps) - keep_recent)
        while self._compacted < cutoff:
            swap = self._compact[self._compacted]
            if swap is not None:
                self._shown[swap[0]] = swap[1]
            self._compacted += 1
        return list(self._shown)


def estimate_tokens(request: ModelRequest) -> int:
    """Rough prompt size in tokens: the text a provider would be sent, divided by four."""
    chars = len(request.system) + len(request.request)
    for spec in request.tools:
        chars += len(spec.name) + len(spec.description) + len(to_json(provider_schema(spec)))
    for exchange in request.exchanges:
        call = exchange.call
        if isinstance(call, ToolCall):
            chars += len(call.tool) + len(call.arguments) + len(call.reason or "")
        else:
            chars += len(call.text)
        chars += len(to_json(exchange.result, fallback=str))
    return max(1, chars // 4)
