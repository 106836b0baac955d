"""Hard limits and loop detection: incremental, so a step costs the same at 5 or 45 steps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from orchestrator.records import record

# The step limit, defined once: every other place (deployment settings, the API's session
# options, cdk.json's configuration, the CLI, evaluation cases) refers to these.
DEFAULT_MAX_STEPS = 15
"""Model turns per session when nothing tighter is configured."""
MAX_STEPS_CEILING = 100
"""The most model turns any session may be given, by a deployment, a caller or a local run."""


class Limits(BaseModel):
    """When a session must stop, whatever the model says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(
        default=DEFAULT_MAX_STEPS,
        ge=1,
        le=MAX_STEPS_CEILING,
        description="Model turns per session.",
    )
    max_repeated_calls: int = Field(
        default=3, ge=2, description="The same tool with the same arguments this often stops."
    )
    max_same_error: int = Field(
        default=3, ge=2, description="The same error this many times in a row stops."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Input + output tokens.")
    max_usd: float | None = Field(default=None, gt=0, description="Model spend per session.")
    max_seconds: float | None = Field(default=None, gt=0, description="Wall clock per session.")
    tool_attempts: int = Field(default=3, ge=1, le=10, description="Tries of a transient failure.")
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_max_seconds: float = Field(default=8.0, ge=0)
    max_argument_bytes: int = Field(default=16_384, ge=256, description="Raw arguments size.")
    max_argument_depth: int = Field(default=8, ge=2, description="JSON nesting of arguments.")
    max_string_chars: int = Field(default=4_000, ge=16, description="Any one string argument.")
    max_observation_chars: int = Field(
        default=8_000, ge=500, description="A tool result shown to the model; longer is previewed."
    )
    keep_recent_steps: int | None = Field(
        default=2, ge=1, description="Steps shown verbatim; older results are compacted. None: all."
    )
    compact_result_chars: int = Field(
        default=160, ge=40, description="Preview length of a compacted older result."
    )


def call_key(tool: str, arguments: str | dict[str, Any]) -> str:
    """Identity of a call, for 'the same call N times'.

    A valid call is keyed by its validated input, which pydantic dumps in the model's field
    order: calls that differ only in spacing, key order or spelled-out defaults are the same
    call. A rejected call is keyed by its raw text, in one spelling when it parses.

    The key is a digest: the counters travel in every checkpoint, and arguments may be up to
    `max_argument_bytes` long."""
    if not isinstance(arguments, str):
        canonical = to_json(arguments)
    else:
        try:
            parsed: Any = json.loads(arguments)
        except (ValueError, RecursionError):
            canonical = arguments.strip().encode(errors="surrogatepass")
        else:
            text = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
            canonical = text.encode()
    return f"{tool}:{hashlib.blake2b(canonical, digest_size=16).hexdigest()}"


@record
class LoopGuard:
    """Counters carried in the session state; updated once per step, never recomputed."""

    call_counts: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    error_streak: int = 0
    # Call key -> index of the step whose invoked call succeeded: a repeat is answered from it.
    answered: dict[str, int] = field(default_factory=dict)

    def answered_at(self, key: str) -> int | None:
        """The step that already answered the call `key` successfully, if any."""
        return self.answered.get(key)

    def repeated_call(self, key: str, tool: str, limits: Limits) -> str | None:
        """The reason to stop before making the call `key`, or None."""
        seen = self.call_counts.get(key, 0)
        if seen + 1 >= limits.max_repeated_calls:
            return f"loop detected: {tool} proposed {seen + 1} times with the same arguments"
        return None

    def after(
        self, key: str, error: str | None, *, answered_at: int | None = None, wrote: bool = False
    ) -> LoopGuard:
        """The guard after the call `key`; `error` identifies the error it got, if any;
        `answered_at` is the step index when the call was invoked and succeeded. A write
        (`wrote`) makes earlier answers stale: a read repeated after it runs again."""
        counts = {**self.call_counts, key: self.call_counts.get(key, 0) + 1}
        answered = self.answered
        if answered_at is not None:
            answered = {key: answered_at} if wrote else {**answered, key: answered_at}
        if error is not None:
            fingerprint = error
            streak = self.error_streak + 1 if fingerprint == self.last_error else 1
            return LoopGuard(
                call_counts=counts, last_error=fingerprint, error_streak=streak, answered=answered
            )
        return LoopGuard(call_counts=counts, last_error=None, error_streak=0, answered=answered)

    def repeated_error(self, limits: Limits) -> str | None:
        """The reason to stop after the latest observation, or None."""
        if self.last_error is not None and self.error_streak >= limits.max_same_error:
            return f"loop detected: the same error {self.error_streak} times in a row"
        return None
