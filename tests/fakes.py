"""Hand-written fakes for the ports (no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.ports import Event
from orchestrator.types import Observation, Principal
from tools.kit.contract import required_scopes
from tools.registry import CONTRACTS

# Every scope any registered tool requires: ALICE may use every tool.
ALICE = Principal(user_id="alice", tenant_id="acme", scopes=required_scopes(CONTRACTS))
# Deliberately narrow: one read scope, so most tools are out of BOB's reach.
BOB = Principal(user_id="bob", tenant_id="acme", scopes=frozenset({"customers:read"}))


class RecordingInvoker:
    """Answers every call with `respond(tool, envelope)` and records what it was sent."""

    def __init__(
        self, respond: Callable[[str, Mapping[str, Any]], Observation] | None = None
    ) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._respond = respond or (
            lambda tool, env: Observation(status="ok", output={"tool": tool})
        )

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        self.calls.append((tool, dict(envelope)))
        return self._respond(tool, envelope)


class EventLog:
    """Collects published events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]
