"""What every provider adapter shares: a turn's blocks mapped to exactly one decision, the
history in a provider-neutral shape, and the retry policy for provider calls.

Every stop reason maps to a decision or to an `Unusable` turn, never to a made-up final
answer: a reply cut off at the output limit, a refusal, a filtered reply, a tool block that
cannot be read, or an empty reply each become an observation the model is shown.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from orchestrator.ports import ModelError
from orchestrator.retry import StopAtDeadline
from orchestrator.types import Decision, FinalAnswer, Problem, ToolCall, Unusable

_T = TypeVar("_T")

# The model's own text beside a tool call is kept as its stated reason, capped: it is shown
# in traces and sent back with the call on every later turn.
MAX_REASON_CHARS = 1_000
# What an unusable turn's own text is echoed back as, at most.
MAX_ECHO_CHARS = 500

# Provider error texts may echo a credential (masked or not): never let one into a reason.
_SECRET = re.compile(r"\b(sk|key|token|bearer)[-_ A-Za-z0-9]*[-_:= ]+[A-Za-z0-9*._\-]{8,}", re.I)


def redacted(text: str) -> str:
    """`text` without anything shaped like an API key or token."""
    return _SECRET.sub("[redacted]", text)


Stop = Literal["end", "truncated", "refused", "filtered", "malformed"]

MESSAGES: dict[Problem, str] = {
    "truncated": (
        "your reply was cut off at the output limit before it was complete, so nothing was "
        "run. Reply again, shorter: one tool call with compact JSON arguments, or a brief "
        "plain-text final answer."
    ),
    "refused": (
        "your reply was a refusal, so nothing was run. If the request cannot be done, say so "
        "in a plain-text final answer; otherwise call a tool."
    ),
    "filtered": (
        "your reply was blocked by the provider's content filter, so nothing was run. Call a "
        "tool, or give a plain-text final answer."
    ),
    "malformed": (
        "your reply held a tool call that could not be read (no tool name, or unreadable "
        "arguments), so nothing was run. Call exactly one tool by its name with a JSON object "
        "as arguments."
    ),
    "empty": (
        "your reply was empty, so nothing was run. Call a tool, or give a plain-text final answer."
    ),
}


@dataclass(frozen=True)
class RawCall:
    """A tool block as the provider returned it, its arguments as JSON text: untrusted."""

    call_id: str
    name: str
    arguments: str


def encoded(value: Any) -> str:
    """Decoded tool input (Anthropic, Bedrock) as JSON text: a non-object stays visible as
    what it is, and pre-validation rejects it as such."""
    return json.dumps(value, ensure_ascii=False, default=str)


def unusable(problem: Problem, text: str = "") -> Unusable:
    """An unusable turn with its standard message."""
    return Unusable(problem=problem, message=MESSAGES[problem], text=text[:MAX_ECHO_CHARS])


def decision_of(calls: Sequence[RawCall], text: str, stop: Stop) -> Decision:
    """Exactly one decision from a turn: the first named tool call (the others are named in
    `ignored` and the model is told they did not run), else the text as a final answer.

    A turn that stopped abnormally is never a final answer, whatever text it holds."""
    text = text.strip()
    if stop in ("truncated", "refused", "filtered"):
        partial = text or "".join(call.arguments for call in calls)
        return unusable(stop, partial)
    named = [call for call in calls if call.name.strip()]
    if named:
        first = named[0]
        return ToolCall(
            call_id=first.call_id or "call-0",
            tool=first.name.strip(),
            arguments=first.arguments,
            reason=text[:MAX_REASON_CHARS] or None,
            ignored=tuple(call.name.strip() for call in named[1:]),
        )
    if calls or stop == "malformed":
        return unusable("malformed", text)
    if not text:
        return unusable("empty")
    return FinalAnswer(text=text)


def tool_input(arguments: str) -> dict[str, Any]:
    """A past call's arguments as the JSON object a provider's history block needs: the call
    as made when it was one, else the raw text wrapped (it was rejected as such)."""
    try:
        parsed = json.loads(arguments)
    except (ValueError, RecursionError):
        return {"unparsable_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def unusable_reply(call: Unusable) -> str:
    """What an unusable turn is shown as in the history, on the model's side."""
    return call.text or f"(no usable reply: {call.problem})"


def note_for_model(result: dict[str, Any]) -> str:
    """Lockgate's observation of an unusable turn, on the user's side of the history."""
    return "Lockgate could not use your previous reply: " + json.dumps(result, ensure_ascii=False)


def retry_after_seconds(headers: Any) -> float | None:
    """A `Retry-After` (seconds or HTTP date) or `retry-after-ms` header, in seconds."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _WaitHonouringRetryAfter(wait_random_exponential):
    """Full-jitter exponential backoff, but never shorter than the provider's Retry-After."""

    def __init__(
        self, multiplier: float, cap: float, retry_after: Callable[[BaseException], float | None]
    ) -> None:
        super().__init__(multiplier=multiplier, max=cap)
        self._retry_after = retry_after
        self._cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        delay: float = super().__call__(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if exc is not None:
            asked = self._retry_after(exc)
            if asked is not None:
                delay = max(delay, min(asked, self._cap))
        return delay


class _TimeoutsOnce(stop_base):
    """A read timeout is retried once: a hung model should not cost several full timeouts."""

    def __init__(self, is_timeout: Callable[[BaseException], bool]) -> None:
        self._is_timeout = is_timeout

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and self._is_timeout(exc) and retry_state.attempt_number >= 2


@dataclass(frozen=True)
class RetryPolicy:
    """Lockgate's policy for provider calls: transient failures retried with exponential
    backoff and full jitter (tenacity), at least the provider's Retry-After, bounded by
    attempts, by the session's deadline, and to one retry after a read timeout. The SDKs' own
    retries are off so that this one policy governs every attempt."""

    transient: Callable[[BaseException], bool]
    errors: tuple[type[Exception], ...]  # the SDK's own error classes
    retry_after: Callable[[BaseException], float | None] = lambda _exc: None
    is_timeout: Callable[[BaseException], bool] = lambda _exc: False
    attempts: int = 4
    max_backoff_seconds: float = 20.0
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.time

    def call(
        self, provider: str, fn: Callable[..., _T], deadline: float | None, **kwargs: Any
    ) -> _T:
        """`fn(**kwargs)` under the policy; `ModelError` once it gives up or on a permanent
        failure (the error's text only: never a credential)."""
        options: dict[str, Any] = {
            "retry": retry_if_exception(self.transient),
            "stop": stop_after_attempt(self.attempts)
            | StopAtDeadline(deadline, self.clock)
            | _TimeoutsOnce(self.is_timeout),
            "wait": _WaitHonouringRetryAfter(0.5, self.max_backoff_seconds, self.retry_after),
        }
        if self.sleep is not None:
            options["sleep"] = self.sleep
        try:
            return Retrying(**options)(fn, **kwargs)
        except RetryError as exc:
            last = redacted(str(exc.last_attempt.exception()))
            raise ModelError(f"{provider} kept failing: {last}") from exc
        except self.errors as exc:
            if self.transient(exc):
                raise ModelError(f"{provider} kept failing: {redacted(str(exc))}") from exc
            raise ModelError(f"{provider} refused the request: {redacted(str(exc))}") from exc
