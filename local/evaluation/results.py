"""What an evaluation produces: per run, per case (pass^k) and per suite."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Literal

from pydantic import (
    BaseModel,
)


class Failure(BaseModel):
    """One expectation a run did not meet."""

    check: Literal[
        "outcome",
        "rows",
        "unchanged",
        "not_shown",
        "shown",
        "max_steps",
        "max_tokens",
        "validation_retries",
        "replay",
        "harness",
    ]
    message: str


class RunResult(BaseModel):
    """One run of one case."""

    run: int
    outcome: str | None
    reason: str | None
    passed: bool
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    validation_retries: int
    seconds: float
    model_id: str
    failures: list[Failure]

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class CaseResult(BaseModel):
    """All runs of one case; it passes only if every run does (pass^k)."""

    name: str
    file: str
    expected_outcome: str
    runs: list[RunResult]

    @property
    def passes(self) -> int:
        """How many runs passed."""
        return sum(r.passed for r in self.runs)

    @property
    def passed(self) -> bool:
        """pass^k: all runs passed."""
        return self.passes == len(self.runs)

    def median(self, field: Literal["steps", "tokens", "seconds", "cost_usd", "vr"]) -> float:
        """The median of a per-run figure."""
        values: list[float] = [
            r.validation_retries if field == "vr" else getattr(r, field) for r in self.runs
        ]
        return float(statistics.median(values))

    def outcomes(self) -> str:
        """The outcome, or each outcome with its count when runs disagree."""
        counts = Counter(r.outcome or "none" for r in self.runs)
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{o} x{n}" for o, n in counts.most_common())


class SuiteResult(BaseModel):
    """Every case of one evaluation."""

    generated_at: str
    repeat: int
    model_override: str | None
    cases: list[CaseResult]

    @property
    def passed(self) -> bool:
        """True when every case passed all its runs."""
        return all(c.passed for c in self.cases)

    def summary(self) -> dict[str, Any]:
        """Totals for the report and the footer."""
        runs = [r for c in self.cases for r in c.runs]
        return {
            "cases": len(self.cases),
            "passed": sum(c.passed for c in self.cases),
            "failed": sum(not c.passed for c in self.cases),
            "runs": len(runs),
            "runs_passed": sum(r.passed for r in runs),
            "input_tokens": sum(r.input_tokens for r in runs),
            "output_tokens": sum(r.output_tokens for r in runs),
            "cost_usd": round(sum(r.cost_usd for r in runs), 6),
            "seconds": round(sum(r.seconds for r in runs), 3),
        }

    def report(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "generated_at": self.generated_at,
            "repeat": self.repeat,
            "model_override": self.model_override,
            "passed": self.passed,
            "summary": self.summary(),
            "cases": [
                {
                    "name": c.name,
                    "file": c.file,
                    "expected_outcome": c.expected_outcome,
                    "pass_k": c.passed,
                    "passes": c.passes,
                    "runs": [r.model_dump(mode="json") for r in c.runs],
                }
                for c in self.cases
            ],
        }
