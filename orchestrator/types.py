"""Lockgate's own vocabulary: decisions, observations, steps, outcomes, session state.

All are records (`orchestrator.records`): cheap to build, immutable to the type checker,
validated with `codec` where they come from outside.
"""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt

from orchestrator.limits import LoopGuard
from orchestrator.records import record
from tools.kit.envelope import ErrorKind, Principal

__all__ = [
    "Decision",
    "ErrorKind",
    "Exchange",
    "FinalAnswer",
    "ModelTurn",
    "Observation",
    "Outcome",
    "Principal",
    "SessionState",
    "Step",
    "ToolCall",
    "Unusable",
    "Usage",
]


@record
class Usage:
    """Tokens a model call consumed. With provider prompt caching, `cache_read_tokens` and
    `cache_write_tokens` are the prompt tokens served from or written to the cache (billed at
    their own rates) and `input_tokens` the rest."""

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total(self) -> int:
        """Every token processed: input (cached or not) plus output. Budgets count this."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@record
class ToolCall:
    """The model asks for one tool. `arguments` is the raw JSON text it produced: untrusted.

    `reason` is the text the model wrote beside the call (its stated reason), shown in traces
    and sent back with the call. `ignored` names further calls of the same turn, which were
    not run: Lockgate takes the first call of a turn and tells the model so."""

    kind: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    arguments: str
    reason: str | None = None
    ignored: tuple[str, ...] = ()


@record
class FinalAnswer:
    """The model says it is done."""

    kind: Literal["final"] = "final"
    text: str


Problem = Literal["truncated", "refused", "filtered", "malformed", "empty"]


@record
class Unusable:
    """The model's turn yields no decision: cut off at the output limit, refused, filtered,
    a tool block without a usable name, or nothing at all. Never a final answer: the model
    is shown `message` (what went wrong, what to do) and gets another turn. `text` is what it
    produced, kept for the trace."""

    kind: Literal["unusable"] = "unusable"
    problem: Problem
    message: str
    text: str = ""


Decision = Annotated[ToolCall | FinalAnswer | Unusable, Field(discriminator="kind")]


@record
class ModelTurn:
    """One model response: exactly one decision and what it cost."""

    decision: Decision
    usage: Usage = field(default_factory=Usage)
    model_id: str = "unknown"


@record
class Observation:
    """What the model is shown after a tool call: the tool's output or the exact error."""

    status: Literal["ok", "error"]
    output: dict[str, Any] | None = None
    error_kind: ErrorKind | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @property
    def error_fingerprint(self) -> str | None:
        """Identity of an error, for 'the same error N times in a row'; None when ok."""
        return f"{self.error_kind}:{self.message}" if self.status == "error" else None


@record
class Exchange:
    """One past tool call (or unusable turn) and the result the model is shown for it."""

    call: ToolCall | Unusable
    result: dict[str, Any]


@record
class Step:
    """One applied step: the model's decision and, for a tool call, what came back."""

    index: int
    turn: ModelTurn
    observation: Observation | None = None
    shown: dict[str, Any] | None = None
    shown_chars: int = 0
    compact: dict[str, Any] | None = None
    invoked: bool = False
    attempts: int = 0
    synthesis: ModelTurn | None = None
    writes: bool = False  # the call named a tool that writes (invoked or not)


Budget = Literal["tokens", "usd", "wall_clock"]


class Outcome(StrEnum):
    """How a session ended."""

    COMPLETED = "completed"
    STEP_LIMIT = "step_limit"
    LOOP_DETECTED = "loop_detected"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CANCELLED = "cancelled"
    ERROR = "error"


@record
class SessionState:
    """Everything needed to resume a session: checkpointed after every step."""

    session_id: str
    request: str
    principal: Principal
    steps: tuple[Step, ...] = ()
    usage: Usage = field(default_factory=Usage)
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    cost_usd: float = 0.0
    retries: int = 0
    started_at: float = 0.0
    guard: LoopGuard = field(default_factory=LoopGuard)
    outcome: Outcome | None = None
    exhausted: Budget | None = None
    reason: str | None = None
    answer: str | None = None

    @property
    def done(self) -> bool:
        """True once an outcome is recorded."""
        return self.outcome is not None

    @property
    def writes_done(self) -> int:
        """Write tool calls that succeeded (an idempotent replay included: it wrote once)."""
        return sum(
            1
            for step in self.steps
            if step.writes and step.observation is not None and step.observation.status == "ok"
        )

    @property
    def validation_errors(self) -> int:
        """Round-trips spent on invalid calls: rejected before invoking (nothing ran), refused by
        the tool's own check (a program python_exec will not run, a rule only the tool knows),
        and unusable turns."""
        return sum(
            1
            for step in self.steps
            if step.observation is not None and step.observation.error_kind is ErrorKind.VALIDATION
        )

    @property
    def last_write_ok(self) -> bool | None:
        """Whether the session's last write call succeeded; None when it made none."""
        for step in reversed(self.steps):
            if step.writes and step.observation is not None:
                return step.observation.status == "ok"
        return None

    def facts(self) -> dict[str, Any]:
        """What actually happened, beside the outcome: a `completed` session only means the
        model stopped, so callers read these to know whether its claims hold."""
        return {
            "writes_done": self.writes_done,
            "last_write_ok": self.last_write_ok,
            "validation_errors": self.validation_errors,
            "tool_retries": self.retries,
        }

    def partial_result(self) -> list[dict[str, Any]]:
        """Outputs of the successful tool calls so far: what a stopped session achieved."""
        return [
            {"step": step.index, "tool": step.turn.decision.tool, "output": step.observation.output}
            for step in self.steps
            if isinstance(step.turn.decision, ToolCall)
            and step.observation is not None
            and step.observation.status == "ok"
        ]
