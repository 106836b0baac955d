"""Prompt tokens per step and in total for a 15-step session, per context strategy.

The scripted model reports, as each turn's input tokens, its estimate of what a provider
would be sent (`orchestrator.models.scripted.estimate_tokens`), so a session's steps give the
prompt size turn by turn. The session is deterministic: one run is the measurement.

The baseline strategy, `append_all`, shows the model every past call and result. To compare
a context strategy, add one entry to `STRATEGIES` (a name and how to build the
orchestrator); the table then reports its total as a ratio of `append_all` (target: at most
40% with the same eval results, which `lockgate eval` checks). The table also shows how much
of the total is the first turn's size repeated every turn (instructions, request, tool
schemas): the part that trimming history alone cannot reduce.

    python -m bench.prompt_tokens
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from bench._common import table, write_results
from orchestrator.catalog import Catalog
from orchestrator.invokers.responses import observation_from_response
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import Model, ToolInvoker
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import FinalAnswer, Observation, Principal, ToolCall
from tools.registry import CONTRACTS

STEPS = 15
BASELINE = "append_all"
TARGET = 0.40
PRINCIPAL = Principal(
    user_id="bench",
    tenant_id="acme",
    # Every scope any tool requires: the catalog the model sees is the full one.
    scopes=frozenset().union(*(spec.scopes for spec in CONTRACTS)),
)
CUSTOMERS = {
    "C-1001": ("Ada Lovelace", "ada@acme.example", "gold"),
    "C-1002": ("Grace Hopper", "grace@acme.example", "silver"),
    "C-1003": ("Alan Turing", "alan@acme.example", "standard"),
}
ROUTES = (("CDG", "JFK", "LG100"), ("LHR", "SFO", "LG200"), ("AMS", "LIS", "LG300"))


def script(steps: int = STEPS) -> list[ToolCall | FinalAnswer]:
    """A realistic mix: flight searches (two weeks of departures each), lookups, tier changes
    and bookings, then a final answer."""
    ids = list(CUSTOMERS)
    calls: list[ToolCall | FinalAnswer] = []
    for i in range(steps - 1):
        customer = ids[(i // 4) % len(ids)]
        kind = i % 4
        if kind == 3:
            origin, destination, _ = ROUTES[i % len(ROUTES)]
            tool = "flight_search"
            arguments = {
                "origin": origin,
                "destination": destination,
                "date_from": "2030-05-01",
                "days": 14,
            }
        elif kind == 0:
            tool, arguments = "customer_lookup", {"customer_id": customer}
        elif kind == 1:
            tiers = ("standard", "silver", "gold", "platinum")
            tool, arguments = "customer_update", {"customer_id": customer, "tier": tiers[i % 4]}
        else:
            origin, destination, _ = ROUTES[i % len(ROUTES)]
            tool = "flight_book"
            arguments = {
                "customer_id": customer,
                "origin": origin,
                "destination": destination,
                "date": f"2030-05-{10 + i:02d}",
                "cabin": "business",
            }
        calls.append(ToolCall(call_id=f"call-{i}", tool=tool, arguments=json.dumps(arguments)))
    return [
        *calls,
        FinalAnswer(text="All done: customers reviewed, tiers updated, flights booked."),
    ]


class DemoTools:
    """Answers like the demo tools would, with outputs of realistic size, without a database."""

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """The output the real tool returns for this input on the demo data."""
        data = envelope["input"]
        if tool == "flight_search":
            flight_no = next(
                f for o, d, f in ROUTES if (o, d) == (data["origin"], data["destination"])
            )
            flights = [
                {
                    "flight_no": flight_no,
                    "origin": data["origin"],
                    "destination": data["destination"],
                    "departs_at": f"2030-05-{day:02d}T09:30:00+00:00",
                }
                for day in range(1, data["days"] + 1)
            ]
            return observation_from_response({"status": "ok", "output": {"flights": flights}})
        name, email, tier = CUSTOMERS[data["customer_id"]]
        output: dict[str, Any] = {
            "customer_id": data["customer_id"],
            "name": name,
            "email": email,
            "tier": data.get("tier") or tier,
        }
        if tool == "flight_book":
            flight_no = next(
                f for o, d, f in ROUTES if (o, d) == (data["origin"], data["destination"])
            )
            output = {
                "booking_id": "7d4c1f9e-3b2a-4c8d-9e6f-0a1b2c3d4e5f",
                "customer_id": data["customer_id"],
                "flight_no": flight_no,
                "origin": data["origin"],
                "destination": data["destination"],
                "departs_at": f"{data['date']}T09:30:00+00:00",
                "cabin": data["cabin"],
            }
        return observation_from_response({"status": "ok", "output": output})


Strategy = Callable[[Model, ToolInvoker], Orchestrator]


def append_all(model: Model, invoker: ToolInvoker) -> Orchestrator:
    """Every past call and result shown verbatim, every turn (no compaction)."""
    return Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=model,
        invoker=invoker,
        store=MemoryStore(),
        limits=Limits(max_steps=STEPS, keep_recent_steps=None),
    )


def compacted(model: Model, invoker: ToolInvoker) -> Orchestrator:
    """The default: recent steps verbatim, older results as previews with a reference."""
    return Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=model,
        invoker=invoker,
        store=MemoryStore(),
        limits=Limits(max_steps=STEPS),
    )


STRATEGIES: dict[str, Strategy] = {BASELINE: append_all, "compacted": compacted}


def measure(steps: int = STEPS) -> dict[str, Any]:
    """Per-step input tokens, totals and each strategy's ratio of the baseline."""
    result: dict[str, Any] = {"steps": steps, "baseline": BASELINE, "target_ratio_max": TARGET}
    for name, build in STRATEGIES.items():
        orchestrator = build(ScriptedModel(script(steps), name="prompt-tokens"), DemoTools())
        state = orchestrator.run(orchestrator.start("bench", "Tidy up acme.", PRINCIPAL))
        per_step = [step.turn.usage.input_tokens for step in state.steps]
        result[name] = {
            "outcome": state.outcome.value if state.outcome else None,
            # The first turn has no history: what every turn pays for instructions and tools.
            "fixed_input_tokens_total": per_step[0] * len(per_step),
            "input_tokens_per_step": per_step,
            "input_tokens_total": state.usage.input_tokens,
            "output_tokens_total": state.usage.output_tokens,
        }
    baseline_total = result[BASELINE]["input_tokens_total"]
    for name in STRATEGIES:
        result[name]["ratio_of_baseline"] = result[name]["input_tokens_total"] / baseline_total
    return result


def report(result: dict[str, Any]) -> str:
    """Per-step table and totals."""
    names = list(STRATEGIES)
    steps = len(result[BASELINE]["input_tokens_per_step"])
    rows = [
        [str(i + 1), *(f"{result[n]['input_tokens_per_step'][i]:,}" for n in names)]
        for i in range(steps)
    ]
    rows.append(["total input", *(f"{result[n]['input_tokens_total']:,}" for n in names)])
    rows.append(
        [
            "  of which first-turn size x steps",
            *(
                f"{result[n]['fixed_input_tokens_total']:,}"
                f" ({result[n]['fixed_input_tokens_total'] / result[n]['input_tokens_total']:.0%})"
                for n in names
            ),
        ]
    )
    history = {
        n: result[n]["input_tokens_total"] - result[n]["fixed_input_tokens_total"] for n in names
    }
    rows.append(
        [
            "  history part (total - first-turn x steps)",
            *(
                f"{history[n]:,} ({history[n] / history[BASELINE]:.0%} of {BASELINE})"
                for n in names
            ),
        ]
    )
    # With provider prompt caching (`prompt_cache`), the fixed prefix is written once (billed
    # at 1.25x) and read every later turn (0.1x). Tokens sent do not change; their price does.
    cached = {
        n: history[n]
        + result[n]["input_tokens_per_step"][0]
        * (1.25 + 0.1 * (len(result[n]["input_tokens_per_step"]) - 1))
        for n in names
    }
    rows.append(
        [
            "  billed-equivalent input with prompt caching",
            *(
                f"{cached[n]:,.0f} ({cached[n] / result[BASELINE]['input_tokens_total']:.0%} of {BASELINE} uncached)"
                for n in names
            ),
        ]
    )
    rows.append(["total output", *(f"{result[n]['output_tokens_total']:,}" for n in names)])
    rows.append(["outcome", *(str(result[n]["outcome"]) for n in names)])
    rows.append(
        [
            f"total / {BASELINE} (target <= {TARGET:.0%})",
            *(f"{result[n]['ratio_of_baseline']:.0%}" for n in names),
        ]
    )
    return table(["step", *(f"{n} input tokens" for n in names)], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    result = measure()
    print(f"prompt tokens: a {STEPS}-step session, scripted model's estimate per turn\n")
    print(report(result))
    print(f"\nresults: {write_results('prompt_tokens', result)}")
    return result


if __name__ == "__main__":
    main()
