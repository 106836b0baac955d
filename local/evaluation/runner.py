"""Running cases: each run in its own cloned database, through the real loop and tools."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import psycopg

from local.evaluation.cases import CaseFile, build_model
from local.evaluation.databases import Template, snapshot
from local.evaluation.judge import (
    RecordingInvoker,
    check_state,
    replay_last_write,
    validation_retries,
)
from local.evaluation.report import progress_line
from local.evaluation.results import CaseResult, Failure, RunResult, SuiteResult
from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import SessionState
from tools.registry import CONTRACTS


def run_case(
    case_file: CaseFile, template: Template, *, run: int = 1, model_override: str | None = None
) -> RunResult:
    """Run one case once in its own database and check the state it leaves."""
    case = case_file.case
    dbname = f"lockgate_eval_{secrets.token_hex(6)}"
    failures: list[Failure] = []
    state: SessionState | None = None
    retries, seconds, model_id = 0, 0.0, "unknown"
    try:
        with template.clone(dbname) as admin_url, psycopg.connect(admin_url) as conn:
            conn.autocommit = True
            if case.fixture:
                with conn.transaction():
                    conn.execute(case.fixture.encode())
            before = {t: snapshot(conn, t) for t in case.expect.unchanged}
            model = build_model(case_file, model_override)
            model_id = model.model_id
            invoker = RecordingInvoker(InProcessInvoker(template.tool_settings(dbname)))
            try:
                orchestrator = Orchestrator(
                    catalog=Catalog(CONTRACTS),
                    model=model,
                    invoker=invoker,
                    store=MemoryStore(),
                    limits=Limits(
                        max_steps=case.limits.max_steps, max_tokens=case.limits.max_tokens
                    ),
                )
                session_id = f"eval-{case_file.path.stem}-{run}-{secrets.token_hex(3)}"
                started = time.perf_counter()
                state = orchestrator.run(
                    orchestrator.start(session_id, case.request, case.acting_principal())
                )
                seconds = time.perf_counter() - started
                if case.replay_last_write:
                    replay = replay_last_write(invoker)
                    if replay is not None:
                        failures.append(replay)
            finally:
                invoker.inner.close()
            retries = validation_retries(state)
            failures.extend(check_state(case, state, retries, conn))
            for table, taken in before.items():
                if snapshot(conn, table) != taken:
                    failures.append(Failure(check="unchanged", message=f"table {table} changed"))
    except Exception as exc:  # a crash fails this case; the others still run
        failures.append(Failure(check="harness", message=f"{type(exc).__name__}: {exc}"))
    usage = state.usage if state is not None else None
    input_tokens = usage.input_tokens if usage else 0
    output_tokens = usage.output_tokens if usage else 0
    return RunResult(
        run=run,
        outcome=state.outcome.value if state is not None and state.outcome else None,
        reason=state.reason if state is not None else None,
        passed=not failures,
        steps=len(state.steps) if state is not None else 0,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=round(state.cost_usd if state is not None else 0.0, 6),
        validation_retries=retries,
        seconds=round(seconds, 4),
        model_id=model_id,
        failures=failures,
    )


def _shown_path(path: Path) -> str:
    """Relative to the working directory when inside it: reports stay portable."""
    resolved = path.resolve()
    return (
        str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)
    )


def run_suite(
    cases: Sequence[CaseFile],
    template: Template,
    *,
    repeat: int = 1,
    model_override: str | None = None,
    progress: TextIO | None = None,
) -> SuiteResult:
    """Run every case `repeat` times, printing one progress line per run."""
    results: list[CaseResult] = []
    total = len(cases) * repeat
    done = 0
    for case_file in cases:
        runs: list[RunResult] = []
        for run in range(1, repeat + 1):
            result = run_case(case_file, template, run=run, model_override=model_override)
            runs.append(result)
            done += 1
            if progress is not None:
                progress_line(
                    progress,
                    result,
                    done=done,
                    total=total,
                    name=case_file.case.name,
                    repeat=repeat,
                )
        results.append(
            CaseResult(
                name=case_file.case.name,
                file=_shown_path(case_file.path),
                expected_outcome=case_file.case.expect.outcome.value,
                runs=runs,
            )
        )
    return SuiteResult(
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        repeat=repeat,
        model_override=model_override,
        cases=results,
    )
