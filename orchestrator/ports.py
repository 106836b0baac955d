"""The loop's only ways out to the world. Adapters implement these; the core never sees boto3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orchestrator.records import record
from orchestrator.types import Exchange, ModelTurn, Observation, SessionState
from tools.kit.contract import ToolSpec


@record
class ModelRequest:
    """What the model sees for one decision: instructions, the request, history, the catalog."""

    system: str
    request: str
    exchanges: Sequence[Exchange]
    tools: Sequence[ToolSpec]
    deadline: float | None = None  # epoch seconds: retries must not sleep past it


class ModelError(Exception):
    """The model could not produce a decision (after the adapter's own retries)."""


class Model(Protocol):
    """Decides the next step. Implementations: scripted, Bedrock Converse."""

    @property
    def model_id(self) -> str:
        """Name shown in traces and usage reports."""
        ...

    def decide(self, request: ModelRequest) -> ModelTurn:
        """Return one decision with its usage, or raise `ModelError`."""
        ...


class ToolInvoker(Protocol):
    """Runs one tool with one envelope and reports what came back, never raising for tool errors."""

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """Invoke `tool` with the JSON envelope {principal, input, idempotency_key}."""
        ...


class SessionStore(Protocol):
    """Checkpoints: a step is saved before the next one begins."""

    def save(self, state: SessionState) -> None:
        """Persist the whole state."""
        ...

    def load(self, session_id: str) -> SessionState | None:
        """The last checkpoint, if any."""
        ...


EventKind = Literal[
    "session_started",
    "model_proposed",
    "validation_failed",
    "tool_result",
    "tool_retry",
    "final",
    "stopped",
]


@dataclass(frozen=True)
class Event:
    """A progress event: what happened at one step."""

    session_id: str
    step: int
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)


class EventPublisher(Protocol):
    """Where progress goes: a terminal, a WebSocket, a list in tests."""

    def publish(self, event: Event) -> None:
        """Deliver one event; must not raise for delivery problems."""
        ...


class NullPublisher:
    """Publishes nowhere."""

    def publish(self, event: Event) -> None:
        """Drop the event."""
