"""python_exec: what a call costs, against a bare interpreter started in the same run.

Every program python_exec runs gets a fresh child interpreter, so a call can never be cheaper
than starting one. Measured in one run, interleaved in a shuffled order:
- bare python: `subprocess.run([sys.executable, "-c", "pass"])`, the baseline;
- bare isolated python: the same with `-I -S -B`, the flags the sandbox starts its child with
  (no site packages), the floor of any sandboxed call; and that interpreter importing the
  modules a program may import, which the child does before the program starts;
- static check: `policy.check` on a realistic 18-line analysis program and on the tool's own
  example (the allowlist built once, as in a warm function); building the allowlist, which a
  cold function does on its first call;
- the sandbox alone: `sandbox.run_program` (the child's start, its runner's setup, limits and
  run, the answer read back), for the analysis program; and again with numpy offered (the
  deployment's `numeric` flag), when numpy is installed here;
- end to end: `handler.handler` with a valid envelope (envelope and input validation, the
  check, the sandbox, the answer), for both programs.

The figure: overhead per call = end to end / bare python. No target is set.

    python -m bench.python_exec [--repetitions 7] [--calls 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._common import REPETITIONS, Spread, table, write_results
from tools.kit.handler import logger as tool_logger
from tools.python_exec import policy
from tools.python_exec.contract import SPEC
from tools.python_exec.handler import handler
from tools.python_exec.runner import STANDARD_MODULES
from tools.python_exec.sandbox import Failed, SandboxSettings, run_program

BASELINE = "bare python"
# Child processes per measurement (each sample is their mean); the check runs far more often.
CALLS = 5
CHECKS = 500
# A month-by-month summary of orders: the kind of program a model writes for this tool.
ANALYSIS = """\
import statistics
from collections import defaultdict
from datetime import date

by_month = defaultdict(list)
for row in inputs["orders"]:
    day = date.fromisoformat(row["day"])
    by_month[(day.year, day.month)].append(row["amount"])

months = []
for (year, month), amounts in sorted(by_month.items()):
    months.append({
        "month": f"{year}-{month:02d}",
        "orders": len(amounts),
        "total": round(sum(amounts), 2),
        "median": statistics.median(amounts),
    })
result = {"months": months, "largest": max(row["amount"] for row in inputs["orders"])}
"""
ORDERS = {
    "orders": [
        {"day": f"2030-{1 + i % 6:02d}-{1 + i % 28:02d}", "amount": 5 + (i * 37) % 190 + i % 4 / 4}
        for i in range(120)
    ]
}
EXAMPLE = SPEC.examples[0]
ISOLATED = ("-I", "-S", "-B")
IMPORTS = f"import {', '.join(STANDARD_MODULES)}"


def envelope(arguments: dict[str, Any]) -> dict[str, Any]:
    """A valid call, as the orchestrator sends it."""
    return {
        "principal": {"user_id": "bench", "tenant_id": "acme", "scopes": sorted(SPEC.scopes)},
        "input": arguments,
        "idempotency_key": "bench",
    }


ANALYSIS_CALL = envelope({"code": ANALYSIS, "inputs": ORDERS})
EXAMPLE_CALL = envelope(dict(EXAMPLE))


def _bare(*flags: str, program: str = "pass") -> Callable[[], None]:
    def run() -> None:
        subprocess.run([sys.executable, *flags, "-c", program], check=True)

    return run


def _check(code: str) -> Callable[[], None]:
    allowed = policy.allowlist()

    def run() -> None:
        for _ in range(CHECKS):
            if policy.check(code, allowed) is not None:
                raise RuntimeError("the benchmark's program was refused")

    return run


def _build_allowlist() -> None:
    policy.allowlist.__wrapped__(False)


def _sandbox(code: str, inputs: dict[str, Any], *, numeric: bool = False) -> Callable[[], None]:
    settings, allowed = SandboxSettings(numeric=numeric), policy.allowlist(numeric)

    def run() -> None:
        if isinstance(run_program(code, inputs, settings, allowed), Failed):
            raise RuntimeError("the benchmark's program failed")

    return run


def _call(event: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        response = handler(event)
        if response["status"] != "ok":
            raise RuntimeError(f"the benchmark's call failed: {response}")

    return run


def cases(calls: int) -> dict[str, tuple[Callable[[], None], int]]:
    """Label → (one measurement, how many operations it performs)."""
    return {
        BASELINE: (_bare(), 1),
        "bare python -I -S -B": (_bare(*ISOLATED), 1),
        "... importing the allowed modules": (_bare(*ISOLATED, program=IMPORTS), 1),
        "check, analysis program": (_check(ANALYSIS), CHECKS),
        "check, tool example": (_check(str(EXAMPLE["code"])), CHECKS),
        "allowlist build, modules loaded": (_build_allowlist, 1),
        "run_program, analysis program": (_repeat(_sandbox(ANALYSIS, ORDERS), calls), calls),
        **(
            {
                "run_program, numpy offered": (
                    _repeat(_sandbox(ANALYSIS, ORDERS, numeric=True), calls),
                    calls,
                )
            }
            if importlib.util.find_spec("numpy") is not None
            else {}
        ),
        "handler, analysis program": (_repeat(_call(ANALYSIS_CALL), calls), calls),
        "handler, tool example": (_repeat(_call(EXAMPLE_CALL), calls), calls),
    }


def _repeat(run: Callable[[], None], times: int) -> Callable[[], None]:
    def repeated() -> None:
        for _ in range(times):
            run()

    return repeated


def measure(repetitions: int, calls: int = CALLS) -> dict[str, Any]:
    """Every case once per repetition, shuffled; each sample is ms per operation, each ratio
    is against the bare interpreter of the same repetition."""
    tool_logger.setLevel("WARNING")  # one INFO line per call is not what is measured
    measured = cases(calls)
    for run, _ in measured.values():
        run()  # warm the page cache, the bytecode and the handler's cached settings
    shuffle = random.Random(11)  # an order, not a secret
    samples: dict[str, list[float]] = {label: [] for label in measured}
    for _ in range(repetitions):
        labels = list(measured)
        shuffle.shuffle(labels)
        for label in labels:
            run, operations = measured[label]
            started = time.perf_counter()
            run()
            samples[label].append((time.perf_counter() - started) * 1000 / operations)
    result: dict[str, Any] = {
        "repetitions": repetitions,
        "calls_per_sample": calls,
        "checks_per_sample": CHECKS,
        "program_lines": len(ANALYSIS.splitlines()),
    }
    for label, values in samples.items():
        ratios = [a / b for a, b in zip(values, samples[BASELINE], strict=True)]
        result[label] = {
            "ms": Spread.of(values).as_dict(),
            "ratio": Spread.of(ratios).as_dict(),
        }
    return result


def _spread(data: dict[str, float]) -> Spread:
    return Spread(data["median"], data["min"], data["max"])


def report(result: dict[str, Any]) -> str:
    """The table: ms per operation and the ratio to a bare interpreter."""
    rows = []
    for label in cases(result["calls_per_sample"]):
        entry = result[label]
        ms = _spread(entry["ms"])
        fmt = ".3f" if ms.median < 1 else ".1f"
        rows.append([label, ms.show(fmt), _spread(entry["ratio"]).show(".3f", "x")])
    header = ["per operation", "ms", f"vs `{BASELINE}`"]
    overhead = {
        label.removeprefix("handler, "): _spread(result[label]["ratio"]).median
        for label in ("handler, analysis program", "handler, tool example")
    }
    summary = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in overhead.items())
    return "\n".join(
        [table(header, rows), "", f"overhead per call (end to end / {BASELINE}): {summary}"]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--calls", type=int, default=CALLS, help="handler calls per sample")
    args = parser.parse_args(argv)
    result = measure(args.repetitions, args.calls)
    print(f"python_exec: median (min-max) of {args.repetitions} repetitions\n")
    print(report(result))
    print(f"\nresults: {write_results('python_exec', result)}")
    return result


if __name__ == "__main__":
    main()
