"""Adding a tool is one folder and one registry line: nothing else needs an edit.

A new tool (`airport_lookup`: contract + handler, nothing more) is written into a temporary
`tools/` folder outside the repository and joined to the real `tools` package. The registry
is `CONTRACTS` plus its spec, as one more line in `tools/registry.py` would make it. Then the
catalog offers it, the local users hold its scope, the CDK app gives it a function, a role
and a secret, the migrations give it a database role with exactly its grants (on the real
PostgreSQL), and the local stack provisions it and runs it through its Lambda handler.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import psycopg
import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from psycopg import sql

import tools
from db.migrate import migrate
from infra.bundling import ROOT, Bundler
from infra.config import LockgateConfig
from infra.constructs.tool_function import pascal
from infra.wiring import PLATFORM, build
from local.stack import provision
from local.users import local_users
from orchestrator.catalog import Catalog, ValidCall, anthropic_tools, openai_tools
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import FinalAnswer, Outcome, ToolCall
from tests.conftest import Database
from tools.kit.contract import ToolSpec
from tools.registry import CONTRACTS

NAME = "airport_lookup"
ROLE = f"lockgate_{NAME}"
FILES = {
    "__init__.py": "",
    "contract.py": '''
        """airport_lookup: one airport by its IATA code."""

        from __future__ import annotations

        from pydantic import Field

        from tools.kit.contract import StrictInput, ToolOutput, ToolSpec


        class Input(StrictInput):
            """Which airport."""

            code: str = Field(
                pattern=r"^[A-Z]{3}$", description="IATA code, three capital letters, e.g. 'LIS'."
            )


        class Output(ToolOutput):
            """The airport."""

            code: str
            name: str
            city: str


        SPEC = ToolSpec(
            name="airport_lookup",
            summary="Read an airport's name and city by its IATA code.",
            input=Input,
            output=Output,
            scopes=frozenset({"airports:read"}),
            db_privileges={"airports": frozenset({"SELECT"})},
            examples=[{"code": "LIS"}],
        )
    ''',
    "handler.py": '''
        """airport_lookup Lambda: one SELECT."""

        from __future__ import annotations

        from tools.airport_lookup.contract import SPEC, Input, Output
        from tools.kit.envelope import ErrorKind, ToolError
        from tools.kit.handler import ToolContext, tool_handler


        def lookup(ctx: ToolContext, data: Input) -> Output | ToolError:
            """The airport, or not_found."""
            ctx.cur.execute("SELECT code, name, city FROM airports WHERE code = %s", (data.code,))
            row = ctx.cur.fetchone()
            if row is None:
                return ToolError(kind=ErrorKind.NOT_FOUND, message=f"no airport {data.code}")
            return Output(code=row[0], name=row[1], city=row[2])


        handler = tool_handler(SPEC, lookup)
    ''',
}


def cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


@pytest.fixture
def new_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Write the tool's folder under a temporary `tools/` and join it to the package.

    Yields that folder; its modules are forgotten afterwards.
    """
    folder = tmp_path / "tools" / NAME
    folder.mkdir(parents=True)
    for file, text in FILES.items():
        (folder / file).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setattr(tools, "__path__", [*tools.__path__, str(folder.parent)])
    yield folder
    for module in [
        m for m in sys.modules if m == f"tools.{NAME}" or m.startswith(f"tools.{NAME}.")
    ]:
        del sys.modules[module]


@pytest.fixture
def registry(new_tool: Path) -> tuple[ToolSpec, ...]:
    from tools.airport_lookup.contract import SPEC  # type: ignore[import-not-found]  # written by new_tool

    return (*CONTRACTS, SPEC)


def spec_of(registry: tuple[ToolSpec, ...]) -> ToolSpec:
    return next(s for s in registry if s.name == NAME)


def test_the_catalog_offers_it_and_the_local_users_hold_its_scope(
    registry: tuple[ToolSpec, ...],
) -> None:
    catalog = Catalog(registry)
    users = local_users(registry)
    spec = spec_of(registry)

    # A read-only tool: every local user may use it, carol (another tenant) too.
    for principal in users.values():
        assert NAME in [s.name for s in catalog.visible_to(principal)]
    assert "airports:read" in users["bob"].scopes
    assert NAME in [t["function"]["name"] for t in openai_tools(catalog.visible_to(users["bob"]))]
    assert NAME in [t["name"] for t in anthropic_tools(catalog.visible_to(users["bob"]))]
    # Its own example is a call the catalog accepts.
    (example,) = spec.example_arguments()
    call = ToolCall(call_id="c", tool=NAME, arguments='{"code": "LIS"}')
    prepared = catalog.prepare(call, users["alice"], Limits())
    assert isinstance(prepared, ValidCall)
    assert prepared.input == example


def test_the_cdk_app_gives_it_a_function_a_role_and_a_secret(
    registry: tuple[ToolSpec, ...], new_tool: Path, tmp_path: Path
) -> None:
    # Given a source tree that is the repository with the new folder under tools/
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    for top in ("orchestrator", "db"):
        (tree / top).symlink_to(ROOT / top)
    for entry in (ROOT / "tools").iterdir():
        if entry.name != "__pycache__":
            (tree / "tools" / entry.name).symlink_to(entry)
    (tree / "tools" / NAME).symlink_to(new_tool)
    app = App(
        context={**cdk_context(), "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    config = LockgateConfig.model_validate(cdk_context()["lockgate"])

    # When the stacks are built from the registry with the new spec
    lockgate = build(app, config, registry, bundler=Bundler(PLATFORM, root=tree))

    tools_stack = Template.from_stack(lockgate.tools)
    functions = {
        k: f
        for k, f in tools_stack.find_resources("AWS::Lambda::Function").items()
        if k.startswith(f"{pascal(NAME)}Function")
    }
    ((function_id, function),) = functions.items()
    properties: dict[str, Any] = function["Properties"]
    assert properties["Handler"] == f"tools.{NAME}.handler.handler"
    assert "VpcConfig" in properties
    variables = properties["Environment"]["Variables"]
    assert "LOCKGATE_DB_SECRET_ID" in variables
    assert "LOCKGATE_UPSTREAM_URL" not in variables
    invoke = str(tools_stack.find_resources("AWS::IAM::Policy"))
    assert function_id in invoke

    data = Template.from_stack(lockgate.data).to_json()["Resources"]
    assert f"ToolSecret{pascal(NAME)}" in data
    (migrations,) = [r for r in data.values() if r["Type"] == "Custom::LockgateMigrations"]
    assert ROLE in migrations["Properties"]["ToolSecretArns"]

    groups = Template.from_stack(lockgate.api).find_resources("AWS::Cognito::UserPoolGroup")
    assert "airports:read" in {g["Properties"]["GroupName"] for g in groups.values()}


def test_the_migrations_give_it_a_role_with_exactly_its_grants(
    registry: tuple[ToolSpec, ...], database: Database
) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        try:
            migrate(conn, registry, {ROLE: secrets.token_urlsafe(18)})
            login = conn.execute(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ROLE,)
            ).fetchone()
            grants = conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = %s ORDER BY 1, 2",
                (ROLE,),
            ).fetchall()
        finally:
            drop_role(conn)

    assert login == (True,)
    assert grants == [("airports", "SELECT")]


def test_the_local_stack_provisions_it_and_runs_it_through_its_handler(
    registry: tuple[ToolSpec, ...], database: Database
) -> None:
    # Provisioning gives every tool role a fresh password, as `lockgate run` does; roles are
    # cluster-wide, so the suite's own passwords are restored afterwards.
    try:
        settings = provision(
            database.admin_url,
            upstreams=database.upstreams,
            specs=registry,
            with_demo_data=False,
        )
        assert settings[NAME].database is not None
        assert settings[NAME].upstream_url is None
        assert {n for n, s in settings.items() if s.upstream_url} == {
            s.name for s in registry if s.upstream
        }
        invoker = InProcessInvoker(settings)
        alice = local_users(registry)["alice"]
        orchestrator = Orchestrator(
            catalog=Catalog(registry),
            model=ScriptedModel(
                [
                    ToolCall(call_id="a", tool=NAME, arguments='{"code": "LIS"}'),
                    ToolCall(
                        call_id="b", tool="customer_lookup", arguments='{"customer_id": "C-1001"}'
                    ),
                    FinalAnswer(text="done"),
                ]
            ),
            invoker=invoker,
            store=MemoryStore(),
        )
        try:
            state = orchestrator.run(orchestrator.start("new-tool", "Where is LIS?", alice))
        finally:
            invoker.close()
    finally:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            migrate(conn, CONTRACTS, database.passwords)
            drop_role(conn)

    assert state.outcome is Outcome.COMPLETED
    observations = [s.observation for s in state.steps if s.observation is not None]
    assert [o.status for o in observations] == ["ok", "ok"]
    assert observations[0].output == {"code": "LIS", "name": "Humberto Delgado", "city": "Lisbon"}


def drop_role(conn: psycopg.Connection[Any]) -> None:
    """Remove the new tool's cluster-wide role (its grants in this database first)."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ROLE)))
