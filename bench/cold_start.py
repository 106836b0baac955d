"""Cold start: import-and-init of each Lambda entry point as a whole new process.

Each entry point runs as `python -c "import MODULE"` (the module-level handler objects are
built on import; database connections and SDK clients are opened on first use), against two
baselines in the same run: `import pydantic` as the target names it (pydantic 2 loads lazily,
so this is close to a bare interpreter), and `from pydantic import BaseModel`, which actually
loads pydantic and pydantic-core. Target: at most 1.5x the `import pydantic` process.

`-X importtime` then charges each entry point's import time to the packages that spend it.

    python -m bench.cold_start [--repetitions 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import REPETITIONS, Spread, table, verdict, write_results
from infra.runtime import FUNCTION_ENVIRONMENT
from tools.registry import CONTRACTS, handler_module

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
BASELINE = "import pydantic"
LOADED_BASELINE = "from pydantic import BaseModel"
# Every Lambda entry point: each tool's handler (from the registry) and the orchestrator's.
ENTRY_POINTS = (
    *(handler_module(spec.name) for spec in CONTRACTS),
    "orchestrator.handlers.api",
    "orchestrator.handlers.worker",
    "orchestrator.handlers.dlq",
    "orchestrator.handlers.websocket",
    "orchestrator.handlers.websocket_authorizer",
    "db.handler",
)
# What a Lambda environment sets, and what every Lockgate function's environment sets;
# logging stays as configured in the function.
ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "PYTHONHASHSEED": "0",
    **FUNCTION_ENVIRONMENT,
}


def programs() -> dict[str, str]:
    """Label → the `-c` program of each measured process."""
    return {
        BASELINE: BASELINE,
        LOADED_BASELINE: LOADED_BASELINE,
        **{module: f"import {module}" for module in ENTRY_POINTS},
    }


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    return {**env, **ENV}


def run_once(program: str, *flags: str) -> tuple[float, str]:
    """Wall time of one whole process, and its stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", program],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{program!r} failed:\n{done.stderr[-2000:]}")
    return elapsed, done.stderr


def import_breakdown(module: str, runs: int = 3, top: int = 8) -> list[tuple[str, float]]:
    """Import time by top-level package: `-X importtime` self times summed per package (ms),
    median over `runs` processes. Self times add up to the whole import, so each package is
    charged exactly its own share."""
    samples: dict[str, list[float]] = {}
    for run in range(runs):
        _, stderr = run_once(f"import {module}", "-X", "importtime")
        costs: dict[str, float] = {}
        for line in stderr.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if len(parts) != 3 or not parts[0].strip().isdigit():
                continue  # the header, or anything else on stderr
            package = parts[2].strip().split(".")[0]
            costs[package] = costs.get(package, 0.0) + int(parts[0]) / 1000
        for package, ms in costs.items():
            samples.setdefault(package, [0.0] * run).append(ms)
        for values in samples.values():
            values.extend([0.0] * (run + 1 - len(values)))
    medians = {package: statistics.median(values) for package, values in samples.items()}
    return sorted(medians.items(), key=lambda item: item[1], reverse=True)[:top]


def measure(repetitions: int) -> dict[str, Any]:
    """Every program once per repetition, in a shuffled order, ratios per repetition."""
    progs = programs()
    for program in progs.values():
        run_once(program)  # warm the page cache and write any missing bytecode
    shuffle = random.Random(7)  # an order, not a secret
    times: dict[str, list[float]] = {label: [] for label in progs}
    for _ in range(repetitions):
        labels = list(progs)
        shuffle.shuffle(labels)
        for label in labels:
            times[label].append(run_once(progs[label])[0] * 1000)
    result: dict[str, Any] = {"repetitions": repetitions, "target_ratio_max": TARGET}
    for label, samples in times.items():
        entry: dict[str, Any] = {"ms": Spread.of(samples).as_dict()}
        for baseline, key in ((BASELINE, "ratio"), (LOADED_BASELINE, "ratio_vs_loaded_pydantic")):
            ratios = [a / b for a, b in zip(samples, times[baseline], strict=True)]
            entry[key] = Spread.of(ratios).as_dict()
        if label in ENTRY_POINTS:
            entry["top_imports_ms"] = dict(import_breakdown(label))
        result[label] = entry
    return result


def _spread(data: dict[str, float]) -> Spread:
    return Spread(data["median"], data["min"], data["max"])


def report(result: dict[str, Any]) -> str:
    """The results table and each entry point's heaviest imports."""
    rows = []
    for label in programs():
        entry = result[label]
        ratio = _spread(entry["ratio"])
        is_entry = label in ENTRY_POINTS
        rows.append(
            [
                label,
                _spread(entry["ms"]).show(".0f"),
                ratio.show(".2f", "x"),
                _spread(entry["ratio_vs_loaded_pydantic"]).show(".2f", "x"),
                f"<= {TARGET:g}x" if is_entry else "",
                verdict(ratio.median <= TARGET) if is_entry else "baseline",
            ]
        )
    header = ["process", "ms", f"vs `{BASELINE}`", f"vs `{LOADED_BASELINE}`", "target", ""]
    text = [
        table(header, rows),
        "",
        "import time by package (-X importtime self time, ms, median of 3 runs):",
    ]
    for module in ENTRY_POINTS:
        costs = ", ".join(
            f"{name} {ms:.0f}" for name, ms in result[module]["top_imports_ms"].items()
        )
        text.append(f"  {module}: {costs}")
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    args = parser.parse_args(argv)
    result = measure(args.repetitions)
    print(f"cold start: median (min-max) of {args.repetitions} repetitions\n")
    print(report(result))
    print(f"\nresults: {write_results('cold_start', result)}")
    return result


if __name__ == "__main__":
    main()
