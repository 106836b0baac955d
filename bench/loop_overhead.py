"""Orchestration overhead per step, against a bare hand-written loop in the same process.

Both loops replay the same pre-built decisions (a zero-latency model) and call a no-op tool:
- lockgate: the real `Orchestrator` (catalog pre-validation, loop guard, limits, events,
  a checkpoint per step in the in-memory store), with a no-op in-process tool whose response
  is read the way every invoker reads one;
- bare: pydantic validation of the arguments, a dict dispatch, a step limit. Nothing else.

Targets: lockgate per step at most 5x bare; and flat, its cost per step at 45 steps at most
1.2x its cost at 5 steps (nothing may rescan the whole history every step).

    python -m bench.loop_overhead [--repetitions 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sysconfig
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench._common import REPETITIONS, Spread, table, verdict, write_results
from orchestrator.catalog import Catalog
from orchestrator.invokers.responses import observation_from_response
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.ports import ModelRequest, SessionStore
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import (
    FinalAnswer,
    ModelTurn,
    Observation,
    Principal,
    SessionState,
    ToolCall,
    Usage,
)
from tools.registry import CONTRACTS

PRINCIPAL = Principal(
    user_id="bench",
    tenant_id="acme",
    # Every scope any tool requires: the catalog the model sees is the full one.
    scopes=frozenset().union(*(spec.scopes for spec in CONTRACTS)),
)
SHORT, LONG = 5, 45
RATIO_TARGET, FLAT_TARGET = 5.0, 1.2
# Enough work per measurement that timer resolution and scheduling blips stay small.
STEPS_PER_MEASUREMENT = 4_000


def turns(steps: int) -> list[ModelTurn]:
    """`steps - 1` distinct lookups (so no loop is detected), then a final answer."""
    calls: list[ModelTurn] = [
        ModelTurn(
            decision=ToolCall(
                call_id=f"call-{i}",
                tool="customer_lookup",
                arguments=f'{{"customer_id": "C-{1000 + i}"}}',
            ),
            usage=Usage(input_tokens=800, output_tokens=20),
            model_id="bench:replay",
        )
        for i in range(steps - 1)
    ]
    return [*calls, ModelTurn(decision=FinalAnswer(text="done"), model_id="bench:replay")]


def tool_output(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What the no-op tool returns: a customer-sized output, no I/O."""
    return {
        "customer_id": arguments["customer_id"],
        "name": "Ada Lovelace",
        "email": "ada@acme.example",
        "tier": "gold",
    }


class ReplayModel:
    """A zero-latency model: hands out pre-built turns."""

    model_id = "bench:replay"

    def __init__(self, script: Sequence[ModelTurn]) -> None:
        self._script = script
        self._next = 0

    def decide(self, request: ModelRequest) -> ModelTurn:
        """The next turn; ignores the request."""
        turn = self._script[self._next]
        self._next += 1
        return turn


class NoopInvoker:
    """An in-process no-op tool, its response read as every invoker reads one."""

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """Answer ok with a small output."""
        return observation_from_response({"status": "ok", "output": tool_output(envelope["input"])})


class DiscardingStore:
    """Diagnostic only: a store that keeps nothing, to show what checkpointing costs."""

    def save(self, state: SessionState) -> None:
        """Keep nothing."""

    def load(self, session_id: str) -> SessionState | None:
        """Nothing was kept."""
        return None


def lockgate_session(script: Sequence[ModelTurn], store: SessionStore | None = None) -> int:
    """One real session; returns its step count."""
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=ReplayModel(script),
        invoker=NoopInvoker(),
        store=store or MemoryStore(),
        limits=Limits(max_steps=len(script) + 5),
    )
    state = orchestrator.run(orchestrator.start("bench", "look everyone up", PRINCIPAL))
    return len(state.steps)


def lockgate_without_checkpoints(script: Sequence[ModelTurn]) -> int:
    """Diagnostic: the same session with checkpoints discarded."""
    return lockgate_session(script, DiscardingStore())


TOOLS: dict[str, tuple[type[BaseModel], Callable[[BaseModel], dict[str, Any]]]] = {
    spec.name: (spec.input, lambda data: tool_output(data.model_dump())) for spec in CONTRACTS
}


def bare_session(script: Sequence[ModelTurn]) -> int:
    """The hand-written baseline: validate, dispatch, keep history, stop at a step limit."""
    history: list[tuple[ToolCall, dict[str, Any]]] = []
    max_steps = len(script) + 5
    steps = 0
    for turn in script:
        if steps >= max_steps:
            break
        steps += 1
        decision = turn.decision
        if isinstance(decision, FinalAnswer):
            break
        model, run = TOOLS[decision.tool]
        history.append((decision, run(model.model_validate_json(decision.arguments))))
    return steps


LOOPS: dict[str, Callable[[Sequence[ModelTurn]], int]] = {
    "lockgate": lockgate_session,
    "bare": bare_session,
    "nostore": lockgate_without_checkpoints,
}


def per_step_seconds(session: Callable[[Sequence[ModelTurn]], int], steps: int) -> float:
    """Seconds per step over enough sessions of `steps` steps."""
    script = turns(steps)
    sessions = max(1, STEPS_PER_MEASUREMENT // steps)
    started = time.perf_counter()
    done = sum(session(script) for _ in range(sessions))
    elapsed = time.perf_counter() - started
    assert done == sessions * steps, f"expected {steps} steps per session"
    return elapsed / done


def profile(steps: int = LONG, top: int = 14) -> list[dict[str, Any]]:
    """cProfile of lockgate sessions of `steps` steps: the functions that cost the most own
    time, per step (microseconds; profiling inflates absolute numbers, not the ranking)."""
    script = turns(steps)
    sessions = max(1, 2_000 // steps)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(sessions):
        lockgate_session(script)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    # Site-packages lives under the project's virtualenv: shorten it first.
    prefixes = {
        sysconfig.get_paths()["purelib"] + "/": "",
        sysconfig.get_paths()["stdlib"] + "/": "",
        str(Path(__file__).resolve().parent.parent) + "/": "",
    }

    def label(function: tuple[str, int, str]) -> str:
        path, line, name = function
        for prefix, short in prefixes.items():
            path = path.replace(prefix, short)
        return f"{path}:{line}({name})" if line else name

    rows = []
    for function, (_, calls, own, cumulative, callers) in stats.items():
        # The caller that spent the most time in it: where to look in our code.
        top_caller = max(callers.items(), key=lambda item: item[1][3])[0] if callers else None
        rows.append(
            {
                "function": label(function),
                "mostly_from": label(top_caller) if top_caller else "",
                "calls_per_step": calls / (steps * sessions),
                "own_us_per_step": own * 1e6 / (steps * sessions),
                "cumulative_us_per_step": cumulative * 1e6 / (steps * sessions),
            }
        )
    rows.sort(key=lambda r: r["own_us_per_step"], reverse=True)
    return rows[:top]


def profile_table(rows: list[dict[str, Any]]) -> str:
    """The profile as a table."""
    return table(
        ["function", "calls/step", "own µs/step", "cumulative µs/step", "mostly called from"],
        [
            [
                r["function"],
                f"{r['calls_per_step']:.2f}",
                f"{r['own_us_per_step']:.1f}",
                f"{r['cumulative_us_per_step']:.1f}",
                r["mostly_from"],
            ]
            for r in rows
        ],
        left={0, 4},
    )


def measure(repetitions: int) -> dict[str, Spread]:
    """Paired measurements, interleaved so both loops see the same machine load."""
    lockgate_session(turns(SHORT))  # warm imports and pydantic's validators
    bare_session(turns(SHORT))
    samples: dict[str, list[float]] = {f"{loop}_{n}": [] for loop in LOOPS for n in (SHORT, LONG)}
    for _ in range(repetitions):
        for steps in (SHORT, LONG):
            for loop, session in LOOPS.items():
                samples[f"{loop}_{steps}"].append(per_step_seconds(session, steps) * 1e6)

    def paired(top: str, bottom: str) -> Spread:
        return Spread.of([a / b for a, b in zip(samples[top], samples[bottom], strict=True)])

    return {
        **{f"us_{key}": Spread.of(values) for key, values in samples.items()},
        f"ratio_{SHORT}": paired(f"lockgate_{SHORT}", f"bare_{SHORT}"),
        f"ratio_{LONG}": paired(f"lockgate_{LONG}", f"bare_{LONG}"),
        "flat_lockgate": paired(f"lockgate_{LONG}", f"lockgate_{SHORT}"),
        "flat_bare": paired(f"bare_{LONG}", f"bare_{SHORT}"),
        f"nostore_ratio_{SHORT}": paired(f"nostore_{SHORT}", f"bare_{SHORT}"),
        f"nostore_ratio_{LONG}": paired(f"nostore_{LONG}", f"bare_{LONG}"),
        "flat_nostore": paired(f"nostore_{LONG}", f"nostore_{SHORT}"),
    }


def report(m: dict[str, Spread]) -> str:
    """The results table."""
    rows = [
        [
            f"per step, {steps}-step session",
            m[f"us_lockgate_{steps}"].show(".1f"),
            m[f"us_bare_{steps}"].show(".1f"),
            m[f"ratio_{steps}"].show(".1f", "x"),
            f"<= {RATIO_TARGET:g}x",
            verdict(m[f"ratio_{steps}"].median <= RATIO_TARGET),
        ]
        for steps in (SHORT, LONG)
    ]
    rows.append(
        [
            f"per step at {LONG} / at {SHORT} steps",
            m["flat_lockgate"].show(".2f", "x"),
            m["flat_bare"].show(".2f", "x"),
            "",
            f"<= {FLAT_TARGET:g}x",
            verdict(m["flat_lockgate"].median <= FLAT_TARGET),
        ]
    )
    return table(["measure", "lockgate µs", "bare loop µs", "ratio", "target", ""], rows)


def diagnostic(m: dict[str, Spread]) -> str:
    """The same figures with checkpoints discarded: what the in-memory store's save costs."""
    rows = [
        [
            f"per step, {steps}-step session",
            m[f"us_nostore_{steps}"].show(".1f"),
            m[f"nostore_ratio_{steps}"].show(".1f", "x"),
        ]
        for steps in (SHORT, LONG)
    ]
    rows.append([f"per step at {LONG} / at {SHORT} steps", m["flat_nostore"].show(".2f", "x"), ""])
    return table(["without checkpoints (diagnostic)", "lockgate µs", "ratio vs bare"], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the table (and optionally a profile), write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of 45 steps")
    args = parser.parse_args(argv)
    measured = measure(args.repetitions)
    print(f"loop overhead: median (min-max) of {args.repetitions} repetitions\n")
    print(report(measured))
    print()
    print(diagnostic(measured))
    payload: dict[str, Any] = {
        "repetitions": args.repetitions,
        "targets": {"ratio_max": RATIO_TARGET, "flatness_max": FLAT_TARGET},
        **{key: spread.as_dict() for key, spread in measured.items()},
    }
    if args.profile:
        payload["profile"] = profile()
        print(f"\ncProfile, lockgate sessions of {LONG} steps, by own time:\n")
        print(profile_table(payload["profile"]))
    print(f"\nresults: {write_results('loop_overhead', payload)}")
    return payload


if __name__ == "__main__":
    main()
