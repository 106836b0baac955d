"""What a tool declares about itself: the single source for catalog, schemas, IAM and grants.

A contract imports nothing but pydantic and this kit, so the orchestrator, the migrations
the CDK app and the local stack can all read it without pulling in database drivers or AWS
SDKs. Everything a tool needs from outside its folder is declared here: scopes, database
privileges, examples and the upstream service it calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_UPSTREAM = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Identity is injected by code from the authenticated request; the model must not supply it.
IDENTITY_FIELDS = frozenset(
    {"principal", "user", "user_id", "tenant", "tenant_id", "scopes", "scope", "role", "roles"}
)
# The day examples are written for. Far from any real date on purpose: an example teaches
# the shape of a call and must never be mistaken for today or for the user's own values.
EXAMPLE_TODAY = dt.date(2030, 5, 10)
# How a description marks its examples, so that no value in them is taken for a fact.
EXAMPLE_NOTE = "illustrative; use the user's values"


def today(info: ValidationInfo | None = None) -> dt.date:
    """What "today" means to a date rule: the UTC day, or the `today` of the validation context.

    Only code sets a context (the examples are checked as of `EXAMPLE_TODAY`); calls from a
    model are always validated against the real day.
    """
    context = info.context if info is not None else None
    if isinstance(context, Mapping) and isinstance(context.get("today"), dt.date):
        day: dt.date = context["today"]
        return day
    return dt.datetime.now(dt.UTC).date()


class StrictInput(BaseModel):
    """Base for every tool `Input`: the model controls it, so nothing undeclared gets through."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ToolOutput(BaseModel):
    """Base for every tool `Output`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ToolSpec:
    """A tool's contract.

    `name` is `noun_verb` snake_case and equals the tool's folder. `summary` says, for the
    model, what the tool does and when to use it; `description` adds the examples to it.
    `scopes` are all required of the principal. `db_privileges` maps each table to exactly
    the privileges the tool's database role receives. `writes` marks a tool whose effects
    must be idempotent per call. `examples` are valid arguments (checked against `input` as
    of `EXAMPLE_TODAY` when the contract is defined). `upstream` names the external HTTP
    service the tool calls (its base URL is configuration: a local stand-in, or a deployed
    URL); None for a tool that calls none.
    """

    name: str
    summary: str
    input: type[StrictInput]
    output: type[ToolOutput]
    scopes: frozenset[str]
    db_privileges: Mapping[str, frozenset[Privilege]] = field(default_factory=dict)
    writes: bool = False
    examples: Sequence[Mapping[str, Any]] = ()
    upstream: str | None = None
    _example_inputs: tuple[StrictInput, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    _description: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be noun_verb snake_case")
        if self.input.model_config.get("extra") != "forbid":
            raise ValueError(f"{self.name}: Input must forbid extra fields")
        identity = IDENTITY_FIELDS & set(self.input.model_fields)
        if identity:
            raise ValueError(f"{self.name}: Input may not carry identity fields {sorted(identity)}")
        writes_declared = any(p - {"SELECT"} for p in self.db_privileges.values())
        if writes_declared and not self.writes:
            raise ValueError(f"{self.name}: declares write privileges but writes=False")
        if self.upstream is not None and not _UPSTREAM.match(self.upstream):
            raise ValueError(f"{self.name}: upstream {self.upstream!r} must be a lowercase name")
        inputs = []
        for index, example in enumerate(self.examples):
            try:
                inputs.append(self.input.model_validate(example, context={"today": EXAMPLE_TODAY}))
            except ValidationError as exc:
                raise ValueError(
                    f"{self.name}: example {index} is not a valid input: {exc}"
                ) from exc
        object.__setattr__(self, "examples", tuple(dict(e) for e in self.examples))
        object.__setattr__(self, "_example_inputs", tuple(inputs))
        shown = [json.dumps(arguments) for arguments in self.example_arguments()]
        if shown:
            label = "Example" if len(shown) == 1 else "Examples"
            text = f"{self.summary} {label} ({EXAMPLE_NOTE}): {'; '.join(shown)}."
        else:
            text = self.summary
        object.__setattr__(self, "_description", text)

    @property
    def needs_database(self) -> bool:
        """True when the tool touches PostgreSQL (and so gets a role, a secret and a VPC)."""
        return bool(self.db_privileges) or self.writes

    @property
    def needs_network(self) -> bool:
        """False for a tool that reaches nothing beyond its own process: no database and no
        upstream. Deployed, such a tool gets no network path at all (a security group without
        rules, in subnets without a route out)."""
        return self.needs_database or self.upstream is not None

    @property
    def db_role(self) -> str:
        """The PostgreSQL role this tool's handler connects as."""
        return f"lockgate_{self.name}"

    @property
    def example_inputs(self) -> tuple[StrictInput, ...]:
        """The examples as validated `Input` instances (as of `EXAMPLE_TODAY`)."""
        return self._example_inputs

    def example_arguments(self, as_of: dt.date | None = None) -> list[dict[str, Any]]:
        """The examples as the JSON arguments a model would send, only the fields each sets.

        With `as_of`, every date in them moves by as many days as `as_of` lies from
        `EXAMPLE_TODAY` and the result is validated again as of that day: arguments a test
        can send today that keep each example's distance from "today".
        """
        if as_of is None:
            return [e.model_dump(mode="json", exclude_unset=True) for e in self._example_inputs]
        shift = as_of - EXAMPLE_TODAY
        moved = [
            self.input.model_validate(
                _shifted(e.model_dump(exclude_unset=True), shift), context={"today": as_of}
            )
            for e in self._example_inputs
        ]
        return [m.model_dump(mode="json", exclude_unset=True) for m in moved]

    @property
    def description(self) -> str:
        """What the model reads: the summary, then the examples, marked as such."""
        return self._description

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input, as shown to the model (computed once; do not mutate)."""
        return _schema_of(self.input)


def required_scopes(specs: Iterable[ToolSpec]) -> frozenset[str]:
    """Every scope some tool requires: a principal holding them all may use every tool."""
    return frozenset(scope for spec in specs for scope in spec.scopes)


def read_only_scopes(specs: Iterable[ToolSpec]) -> frozenset[str]:
    """The scopes of the tools that change nothing (`writes=False`).

    A principal holding exactly these may use every read-only tool and no tool that writes:
    a writing tool whose scopes all lie among them is refused, since it would let a reader write.
    """
    specs = tuple(specs)
    scopes = required_scopes(spec for spec in specs if not spec.writes)
    readable = sorted(spec.name for spec in specs if spec.writes and spec.scopes <= scopes)
    if readable:
        raise ValueError(
            f"{', '.join(readable)}: a writing tool needs a scope no read-only tool has"
        )
    return scopes


def _shifted(value: Any, shift: dt.timedelta) -> Any:
    if isinstance(value, dt.date):  # a datetime is a date too
        return value + shift
    if isinstance(value, Mapping):
        return {k: _shifted(v, shift) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shifted(v, shift) for v in value]
    return value


@functools.cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
