"""Shared helpers: repetition statistics, plain-text tables and JSON results.

Every figure is a ratio against a baseline measured in the same run, repeated, and reported
as median with the min-max spread: absolute times on a shared machine mean little.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPETITIONS = 7


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarize repeated measurements."""
        return cls(statistics.median(values), min(values), max(values))

    def show(self, fmt: str = ".2f", unit: str = "") -> str:
        """`median (min-max)` for a table cell."""
        return f"{self.median:{fmt}}{unit} ({self.low:{fmt}}-{self.high:{fmt}})"

    def as_dict(self) -> dict[str, float]:
        """For the JSON results."""
        return {"median": self.median, "min": self.low, "max": self.high}


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    left: frozenset[int] | set[int] = frozenset({0}),
) -> str:
    """Text columns (`left`, by index) left-aligned, figures right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i in left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    return "\n".join(text.rstrip() for text in lines)


def verdict(ok: bool) -> str:
    """Table cell for a target check."""
    return "meets target" if ok else "MISSES target"


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write `bench/results/NAME.json` (gitignored) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "python": sys.version.split()[0], **payload}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
