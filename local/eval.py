"""`lockgate eval`: golden cases judged by what the agent did to the world.

A case (YAML, `evals/cases/NN_name.yaml`) gives a request, a principal, optional fixture SQL,
a model (an inline script for CI, or `bedrock:MODEL_ID` for real runs), limits, and the
expected final state: the outcome, rows returned by SQL queries, tables that must be
unchanged, and bounds on steps, tokens and validation retries. What the model *said* is not
checked; the database is.

Every run of every case gets its own database, cloned from a template that is migrated and
seeded once per evaluation, so cases cannot leak into each other. `--repeat K` runs each case
K times and reports pass^k (all K runs pass), because real models are not deterministic.
Results: a table on the terminal, `report.json` and `chart.png` in `--out`, and a non-zero
exit code on any failure so the command can gate CI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TextIO
from uuid import UUID

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from db.migrate import migrate, seed
from local.stack import database_server, home, tool_settings, upstream_services
from local.users import LOCAL_USERS
from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING, Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import Model
from orchestrator.records import as_data, codec
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import (
    Decision,
    ErrorKind,
    FinalAnswer,
    Observation,
    Outcome,
    Principal,
    SessionState,
    ToolCall,
)
from tools.kit.settings import ToolSettings
from tools.registry import CONTRACTS

DEFAULT_CASES = Path(__file__).resolve().parent.parent / "evals" / "cases"
REPORT_FILE = "report.json"
CHART_FILE = "chart.png"

# Same placeholder as scripted model files, so a case can say "in 30 days" in its script,
# its fixture SQL and its expected rows alike.
_TODAY = re.compile(r"\{today([+-]\d+)?\}")


class CaseError(Exception):
    """A case file that cannot be run as written; the message names the file and the field."""


# --- the case format ------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptStep(_Strict):
    """One scripted decision: a tool call (arguments as a mapping or raw text) or a final answer."""

    tool: str | None = None
    arguments: dict[str, Any] | str | None = None
    final: str | None = None

    @model_validator(mode="after")
    def _one_decision(self) -> Self:
        if (self.tool is None) == (self.final is None):
            raise ValueError("a script step has either 'tool' (with 'arguments') or 'final'")
        if self.final is not None and self.arguments is not None:
            raise ValueError("a 'final' step takes no 'arguments'")
        return self

    def decision(self, index: int) -> Decision:
        """The decision the scripted model replays."""
        if self.final is not None:
            return FinalAnswer(text=self.final)
        arguments = {} if self.arguments is None else self.arguments
        # A string is sent exactly as written, to rehearse malformed JSON.
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        return ToolCall(call_id=f"call-{index}", tool=str(self.tool), arguments=raw)


class InlineScript(_Strict):
    """A scripted model written inside the case: what CI runs."""

    script: list[ScriptStep] = Field(min_length=1)
    name: str | None = None
    repeat_last: bool = False


ModelSpec = Annotated[
    Annotated[str, Tag("spec"), Field(pattern=r"^(scripted|bedrock):.+$")]
    | Annotated[InlineScript, Tag("inline")],
    Discriminator(lambda value: "spec" if isinstance(value, str) else "inline"),
]


class CaseLimits(_Strict):
    """The session's hard limits for this case."""

    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, le=MAX_STEPS_CEILING)
    max_tokens: int | None = Field(default=None, ge=1)


class RowCheck(_Strict):
    """A query run as the superuser after the session, and the exact rows it must return."""

    sql: str = Field(min_length=1)
    equals: list[list[Any]]


class Bound(_Strict):
    """An inclusive range; either end may be open."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    def admits(self, value: int) -> bool:
        """True when `value` lies in the range."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


TableName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]


class Expect(_Strict):
    """The final state a passing run leaves behind."""

    outcome: Outcome
    rows: list[RowCheck] = Field(default_factory=list)
    unchanged: list[TableName] = Field(default_factory=list)
    not_shown: list[str] = Field(
        default_factory=list,
        description="Text no tool result may show the model, e.g. another tenant's data.",
    )
    max_steps: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    validation_retries: int | Bound | None = Field(default=None)


class Case(_Strict):
    """One golden case."""

    name: str = Field(min_length=1, max_length=80)
    description: str | None = None
    request: str = Field(min_length=1)
    user: str | None = None
    principal: Principal | None = None
    fixture: str | None = None
    model: ModelSpec
    limits: CaseLimits = CaseLimits()
    replay_last_write: bool = False
    expect: Expect

    @model_validator(mode="after")
    def _one_principal(self) -> Self:
        if (self.user is None) == (self.principal is None):
            raise ValueError("give either 'user' (a local user) or an explicit 'principal'")
        if self.user is not None and self.user not in LOCAL_USERS:
            raise ValueError(
                f"unknown user {self.user!r}; local users are {', '.join(LOCAL_USERS)}"
            )
        return self

    def acting_principal(self) -> Principal:
        """Who the agent acts for in this case."""
        return self.principal if self.principal is not None else LOCAL_USERS[str(self.user)]


@dataclass(frozen=True)
class CaseFile:
    """A validated case and where it came from."""

    path: Path
    case: Case


def expand_dates(text: str) -> str:
    """Replace `{today+N}` with the ISO date N days from today (UTC), as scripted models do."""
    today = dt.datetime.now(dt.UTC).date()
    return _TODAY.sub(lambda m: (today + dt.timedelta(days=int(m.group(1) or 0))).isoformat(), text)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        # Drop the union tags ("spec"/"inline"): they are ours, not the author's.
        loc = [str(part) for part in err["loc"] if part not in {"spec", "inline"}]
        lines.append(f"  {'.'.join(loc) or '(case)'}: {err['msg']}")
    return "\n".join(lines)


def load_case(path: Path) -> CaseFile:
    """Parse and validate one case file; raises CaseError naming the file and each bad field."""
    try:
        document = yaml.safe_load(expand_dates(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise CaseError(f"{path}: cannot read the case: {exc}") from exc
    if not isinstance(document, dict):
        raise CaseError(f"{path}: expected a mapping with name, request, model and expect")
    try:
        case = Case.model_validate(document)
    except ValidationError as exc:
        raise CaseError(f"{path}: invalid case\n{_describe(exc)}") from exc
    if isinstance(case.model, str) and case.model.startswith("scripted:"):
        script = _relative(path, case.model.removeprefix("scripted:"))
        if not script.is_file():
            raise CaseError(f"{path}: model: no such script file {script}")
    return CaseFile(path, case)


def _relative(case_path: Path, target: str) -> Path:
    candidate = Path(target)
    return candidate if candidate.is_absolute() else case_path.parent / candidate


def load_cases(paths: Sequence[Path]) -> list[CaseFile]:
    """Case files and directories of case files (`*.yaml`, sorted), validated up front."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.is_file():
            files.append(path)
        else:
            raise CaseError(f"{path}: no such case file or directory")
    if not files:
        raise CaseError(f"no case files in {', '.join(str(p) for p in paths)}")
    cases = [load_case(f) for f in files]
    names = Counter(c.case.name for c in cases)
    duplicated = sorted(name for name, count in names.items() if count > 1)
    if duplicated:
        raise CaseError(f"case names must be unique: {', '.join(duplicated)}")
    return cases


def build_model(case_file: CaseFile, override: str | None = None) -> Model:
    """A fresh model for one run (scripted models keep their position in the script)."""
    spec = override if override is not None else case_file.case.model
    if isinstance(spec, InlineScript):
        decisions = [step.decision(i) for i, step in enumerate(spec.script)]
        return ScriptedModel(
            decisions, name=spec.name or case_file.path.stem, repeat_last=spec.repeat_last
        )
    # Imported here: the CLI imports this module to register the subcommand.
    from local.models import UsageError, load_model

    if spec.startswith("scripted:") and override is None:
        spec = f"scripted:{_relative(case_file.path, spec.removeprefix('scripted:'))}"
    try:
        return load_model(spec)
    except UsageError as exc:
        raise CaseError(f"{case_file.path}: {exc}") from exc


# --- databases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A migrated, seeded database that every run clones, its tool-role passwords, and the
    base URL of each upstream the contracts declare (the local stand-ins).

    `server_url` is a superuser connection string to any database on the same server.
    """

    server_url: str
    name: str
    passwords: Mapping[str, str]
    upstreams: Mapping[str, str] = field(default_factory=dict)

    def url(self, dbname: str) -> str:
        """Superuser connection string for another database on the same server."""
        params: dict[str, Any] = conninfo_to_dict(self.server_url)
        params["dbname"] = dbname
        return make_conninfo(**params)

    def tool_settings(self, dbname: str) -> dict[str, ToolSettings]:
        """Each tool's settings for a database cloned from this template, as the stack makes them."""
        return tool_settings(self.url(dbname), self.passwords, self.upstreams)

    @contextlib.contextmanager
    def clone(self, dbname: str) -> Iterator[str]:
        """A fresh database cloned from the template, dropped after the block."""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(self.name)
                )
            )
        try:
            yield self.url(dbname)
        finally:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


@contextlib.contextmanager
def prepared_template(
    server_url: str, upstreams: Mapping[str, str] | None = None
) -> Iterator[Template]:
    """Create, migrate and seed a template database for one evaluation; drop it after.

    Tool roles are cluster-wide: this gives them fresh passwords, as `lockgate run` does.
    """
    name = f"lockgate_eval_tmpl_{secrets.token_hex(4)}"
    passwords = {
        spec.db_role: secrets.token_urlsafe(24) for spec in CONTRACTS if spec.needs_database
    }
    template = Template(server_url, name, passwords, dict(upstreams or {}))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(template.url(name), autocommit=True) as conn:
            migrate(conn, CONTRACTS, passwords)
            seed(conn)
        yield template
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def plain(value: Any) -> Any:
    """A database or YAML value in one comparable JSON form (dates as ISO text, UUIDs as text)."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)


def _snapshot(conn: psycopg.Connection[Any], table: str) -> tuple[Any, ...]:
    """Row count and a digest of every row's text: equal snapshots mean an unchanged table."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
            " FROM {} AS t"
        ).format(sql.Identifier(table))
    ).fetchone()
    return tuple(row) if row is not None else ()


# --- running --------------------------------------------------------------------------------


class Failure(BaseModel):
    """One expectation a run did not meet."""

    check: Literal[
        "outcome",
        "rows",
        "unchanged",
        "not_shown",
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


class _RecordingInvoker:
    """Passes calls through and remembers each envelope with its result, for the replay check."""

    def __init__(self, inner: InProcessInvoker) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any], Observation]] = []

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        observation = self.inner.invoke(tool, envelope)
        self.calls.append((tool, json.loads(json.dumps(envelope)), observation))
        return observation


_WRITES = frozenset(spec.name for spec in CONTRACTS if spec.writes)


def _replay_last_write(invoker: _RecordingInvoker) -> Failure | None:
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


def _check_state(
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
    return failures


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
            before = {t: _snapshot(conn, t) for t in case.expect.unchanged}
            model = build_model(case_file, model_override)
            model_id = model.model_id
            invoker = _RecordingInvoker(InProcessInvoker(template.tool_settings(dbname)))
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
                    replay = _replay_last_write(invoker)
                    if replay is not None:
                        failures.append(replay)
            finally:
                invoker.inner.close()
            retries = validation_retries(state)
            failures.extend(_check_state(case, state, retries, conn))
            for table, snapshot in before.items():
                if _snapshot(conn, table) != snapshot:
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
                _progress_line(
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


# --- output ---------------------------------------------------------------------------------


def _progress_line(
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


# --- command line ---------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _model_spec(text: str) -> str:
    if not re.match(r"^(scripted|bedrock):.+$", text):
        raise argparse.ArgumentTypeError("expected scripted:FILE or bedrock:MODEL_ID")
    return text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `lockgate eval`."""
    parser = subparsers.add_parser(
        "eval",
        help="run golden cases and judge the final state of the database",
        description="Run golden cases, each in a fresh database, and check the state they leave.",
    )
    parser.add_argument(
        "cases",
        nargs="*",
        type=Path,
        help=f"case files or directories (default: {DEFAULT_CASES})",
    )
    parser.add_argument(
        "--repeat", type=_positive, default=1, help="runs per case; a case passes if all pass"
    )
    parser.add_argument(
        "--model",
        type=_model_spec,
        default=None,
        help="use this model for every case instead of the case's own (e.g. bedrock:MODEL_ID)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where report.json and chart.png go (default: .lockgate/eval)",
    )


def run(args: argparse.Namespace, out: TextIO, *, template: Template | None = None) -> int:
    """Run `lockgate eval`: 0 when every case passes, 1 on any failure, 2 on bad input.

    `template` reuses an existing migrated, seeded template (tests pass theirs, so the
    cluster-wide tool-role passwords stay as they are); by default one is made and dropped.
    """
    # Tool logs are structured JSON for CloudWatch; here the table says it all.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        cases = load_cases(args.cases or [DEFAULT_CASES])
    except CaseError as exc:
        print(f"lockgate eval: {exc}", file=sys.stderr)
        return 2
    model_note = args.model or "each case's own model"
    print(
        f"lockgate eval: {len(cases)} cases x {args.repeat} run(s), model: {model_note}", file=out
    )
    if template is not None:
        suite = run_suite(
            cases, template, repeat=args.repeat, model_override=args.model, progress=out
        )
    else:
        with (
            database_server() as admin_url,
            upstream_services() as upstreams,
            prepared_template(admin_url, upstreams) as own,
        ):
            suite = run_suite(
                cases, own, repeat=args.repeat, model_override=args.model, progress=out
            )
    print(file=out)
    print(format_table(suite), file=out)
    report, chart = write_reports(suite, args.out or home() / "eval")
    print(f"report: {report}\nchart:  {chart}", file=out)
    return 0 if suite.passed else 1
