"""Judging a run by the state it left: the outcome, rows, unchanged tables, what the model
was shown (and was not), bounds on steps, tokens and validation retries, and an idempotent
replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg

from local.evaluation.cases import Case
from local.evaluation.databases import plain
from local.evaluation.results import Failure
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.records import as_data, codec
from orchestrator.types import (
    ErrorKind,
    Observation,
    SessionState,
)
from tools.registry import CONTRACTS


class RecordingInvoker:
    """Passes calls through and remembers each envelope with its result, for the replay check."""

    def __init__(self, inner: InProcessInvoker) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any], Observation]] = []

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        observation = self.inner.invoke(tool, envelope)
        self.calls.append((tool, json.loads(json.dumps(envelope)), observation))
        return observation


_WRITES = frozenset(spec.name for spec in CONTRACTS if spec.writes)


def replay_last_write(invoker: RecordingInvoker) -> Failure | None:
    """Invoke the last successful write again with its envelope: it must answer, not write."""
    writes = [
        (tool, envelope, obs)
        for tool, envelope, obs in invoker.calls
        if tool in _WRITES and obs.status == "ok" and not obs.replayed
    ]
    if not writes:
        return Failure(check="replay", message="no successful write to replay")
    tool, envelope, first = writes[-1]
    again = invoker.inner.invoke(tool, envelope)
    if again.status != "ok" or not again.replayed or again.output != first.output:
        return Failure(
            check="replay",
            message=f"replaying {tool} with key {envelope['idempotency_key']} gave "
            f"{as_data(again, exclude_defaults=True)}, not the first result",
        )
    return None


def validation_retries(state: SessionState) -> int:
    """Turns spent on calls rejected as invalid (by the orchestrator or by the tool)."""
    return sum(
        1
        for step in state.steps
        if step.observation is not None
        and step.observation.status == "error"
        and step.observation.error_kind is ErrorKind.VALIDATION
    )


def check_state(
    case: Case, state: SessionState, retries: int, conn: psycopg.Connection[Any]
) -> list[Failure]:
    expect = case.expect
    failures: list[Failure] = []
    if state.outcome is not expect.outcome:
        failures.append(
            Failure(
                check="outcome",
                message=f"expected {expect.outcome.value}, got {state.outcome} ({state.reason})",
            )
        )
    for check in expect.rows:
        got = plain([list(row) for row in conn.execute(check.sql.encode()).fetchall()])
        want = plain(check.equals)
        if got != want:
            failures.append(
                Failure(check="rows", message=f"{check.sql.strip()}: expected {want}, got {got}")
            )
    steps, tokens = len(state.steps), state.usage.total
    if expect.max_steps is not None and steps > expect.max_steps:
        failures.append(
            Failure(check="max_steps", message=f"{steps} steps, at most {expect.max_steps}")
        )
    if expect.max_tokens is not None and tokens > expect.max_tokens:
        failures.append(
            Failure(check="max_tokens", message=f"{tokens} tokens, at most {expect.max_tokens}")
        )
    bound = expect.validation_retries
    if bound is not None:
        admitted = bound == retries if isinstance(bound, int) else bound.admits(retries)
        if not admitted:
            wanted = bound if isinstance(bound, int) else bound.model_dump(exclude_none=True)
            failures.append(
                Failure(check="validation_retries", message=f"{retries} retries, expected {wanted}")
            )
    shown = [
        codec(Observation).dump_json(step.observation).decode()
        for step in state.steps
        if step.observation is not None
    ]
    for text in expect.not_shown:
        if any(text in observation for observation in shown):
            failures.append(Failure(check="not_shown", message=f"a tool result showed {text!r}"))
    for result in expect.shown:
        step = state.steps[result.step - 1] if result.step <= len(state.steps) else None
        got = plain(step.shown) if step is not None else None
        included = plain(result.includes)
        if not _includes(got, included):
            failures.append(
                Failure(
                    check="shown",
                    message=f"step {result.step} showed {got}, expected it to include {included}",
                )
            )
    return failures


def _includes(got: Any, wanted: Any) -> bool:
    """True when `got` has every key of `wanted` (at every level of mappings), equal elsewhere."""
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(
            key in got and _includes(got[key], value) for key, value in wanted.items()
        )
    return bool(got == wanted)
