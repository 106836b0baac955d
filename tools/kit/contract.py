"""What a tool declares about itself: the single source for catalog, schemas, IAM and grants.

A contract imports nothing but pydantic and this kit, so the orchestrator, the migrations
and the CDK app can all read it without pulling in database drivers or AWS SDKs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
# Identity is injected by code from the authenticated request; the model must not supply it.
IDENTITY_FIELDS = frozenset(
    {"principal", "user", "user_id", "tenant", "tenant_id", "scopes", "scope", "role", "roles"}
)


class StrictInput(BaseModel):
    """Base for every tool `Input`: the model controls it, so nothing undeclared gets through."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ToolOutput(BaseModel):
    """Base for every tool `Output`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ToolSpec:
    """A tool's contract.

    `name` is `noun_verb` snake_case and equals the tool's folder. `description` is written
    for the model. `scopes` are all required of the principal. `db_privileges` maps each
    table to exactly the privileges the tool's database role receives. `writes` marks a
    tool whose effects must be idempotent per call.
    """

    name: str
    description: str
    input: type[StrictInput]
    output: type[ToolOutput]
    scopes: frozenset[str]
    db_privileges: Mapping[str, frozenset[Privilege]] = field(default_factory=dict)
    writes: bool = False

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

    @property
    def needs_database(self) -> bool:
        """True when the tool touches PostgreSQL (and so gets a role, a secret and a VPC)."""
        return bool(self.db_privileges) or self.writes

    @property
    def db_role(self) -> str:
        """The PostgreSQL role this tool's handler connects as."""
        return f"lockgate_{self.name}"

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the input, as shown to the model (computed once; do not mutate)."""
        return _schema_of(self.input)


@functools.cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
