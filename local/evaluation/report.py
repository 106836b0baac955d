"""Output: a progress line per run, the results table, `report.json` and `chart.png`."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from local.evaluation.results import RunResult, SuiteResult

REPORT_FILE = "report.json"
CHART_FILE = "chart.png"


def progress_line(
    out: TextIO, result: RunResult, *, done: int, total: int, name: str, repeat: int
) -> None:
    width = len(str(total))
    run = f" run {result.run}/{repeat}" if repeat > 1 else ""
    verdict = "pass" if result.passed else "FAIL"
    print(
        f"[{done:>{width}}/{total}] {verdict}  {name}{run}: {result.outcome}, "
        f"{result.steps} steps, {result.tokens:,} tokens, {result.seconds:.2f} s",
        file=out,
        flush=True,
    )
    for failure in result.failures:
        print(f"{'':>{2 * width + 9}}{failure.check}: {failure.message}", file=out, flush=True)


def format_table(suite: SuiteResult) -> str:
    """The results table: one row per case (medians over its runs)."""
    header = ("case", "outcome", "pass", "steps", "tokens", "cost $", "val.retries", "time s")
    rows: list[tuple[str, ...]] = []
    for c in suite.cases:
        verdict = "pass" if c.passed else "FAIL"
        if suite.repeat > 1:
            verdict = f"{c.passes}/{len(c.runs)} {verdict}"
        rows.append(
            (
                c.name,
                c.outcomes(),
                verdict,
                f"{c.median('steps'):g}",
                f"{c.median('tokens'):,.0f}",
                f"{c.median('cost_usd'):.4f}",
                f"{c.median('vr'):g}",
                f"{c.median('seconds'):.2f}",
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    left = {0, 1, 2}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    summary = suite.summary()
    lines = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    lines.append(
        f"pass^{suite.repeat}: {summary['passed']}/{summary['cases']} cases"
        f" · {summary['runs_passed']}/{summary['runs']} runs"
        f" · {summary['input_tokens'] + summary['output_tokens']:,} tokens"
        f" · ${summary['cost_usd']:.4f} · {summary['seconds']:.2f} s in sessions"
    )
    return "\n".join(lines)


def write_chart(suite: SuiteResult, path: Path) -> None:
    """A PNG with steps and tokens per case (medians), failed cases in red."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed in CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [c.name for c in suite.cases]
    colors = ["#2e7d32" if c.passed else "#c62828" for c in suite.cases]
    height = max(3.0, 0.32 * len(names) + 1.2)
    fig, (steps_ax, tokens_ax) = plt.subplots(1, 2, figsize=(12, height), sharey=True)
    positions = list(range(len(names)))
    steps_ax.barh(positions, [c.median("steps") for c in suite.cases], color=colors)
    steps_ax.set_yticks(positions, names, fontsize=8)
    steps_ax.invert_yaxis()
    steps_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    steps_ax.set_xlabel("steps")
    inputs = [statistics.median(r.input_tokens for r in c.runs) for c in suite.cases]
    outputs = [statistics.median(r.output_tokens for r in c.runs) for c in suite.cases]
    tokens_ax.barh(positions, inputs, color=colors, label="input")
    tokens_ax.barh(positions, outputs, left=inputs, color=colors, alpha=0.45, label="output")
    tokens_ax.set_xlabel("tokens (input, then output)")
    fig.suptitle(
        f"lockgate eval: {suite.summary()['passed']}/{len(names)} cases pass^{suite.repeat}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(suite: SuiteResult, out_dir: Path) -> tuple[Path, Path]:
    """Write `report.json` and `chart.png` into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / REPORT_FILE
    report.write_text(json.dumps(suite.report(), indent=2) + "\n")
    chart = out_dir / CHART_FILE
    write_chart(suite, chart)
    return report, chart
