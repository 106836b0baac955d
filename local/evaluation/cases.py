"""The case format (YAML under `evals/cases/`) and loading: every file is validated before
anything runs, and a bad one is named with each bad field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from local.users import LOCAL_USERS
from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import Model
from orchestrator.types import (
    Decision,
    FinalAnswer,
    Outcome,
    Principal,
    ToolCall,
)

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "evals" / "cases"

# Same placeholder as scripted model files, so a case can say "in 30 days" in its script,
# its fixture SQL and its expected rows alike.
_TODAY = re.compile(r"\{today([+-]\d+)?\}")


class CaseError(Exception):
    """A case file that cannot be run as written; the message names the file and the field."""


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


class ShownCheck(_Strict):
    """A tool result the model must have been shown at one step (1 for the first)."""

    step: int = Field(ge=1)
    includes: dict[str, Any] = Field(
        description=(
            "What the result must contain, as the model saw it ({status, output} or {status, "
            "error_kind, message, details}): a mapping matches on the keys it gives, at every "
            "level; anything else must be equal."
        )
    )


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
    shown: list[ShownCheck] = Field(default_factory=list)
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
