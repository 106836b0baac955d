"""The MCP face through the official MCP client: stdio (`lockgate mcp` as a subprocess) and
streamable HTTP on 127.0.0.1, against real tools on a real PostgreSQL.

What is asserted: the tools a user is offered, the rows a call writes (or does not), and that
an error comes back as the tool's error result with exactly what the routing loop would show
a model for the same proposal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import mcp_types as types
import psycopg
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from db.migrate import migrate
from local.auth import issue_token
from local.users import LOCAL_USERS
from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import FinalAnswer, Principal, ToolCall
from tests.conftest import Database, Template
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
ALL_TOOLS = {spec.name for spec in CONTRACTS}
READ_TOOLS = {spec.name for spec in CONTRACTS if not spec.writes}
assert {"customer_lookup", "flight_search", "weather_lookup"} <= READ_TOOLS
T = TypeVar("T")


def flight(**overrides: object) -> dict[str, Any]:
    day = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    return {
        "customer_id": "C-1001",
        "origin": "CDG",
        "destination": "JFK",
        "date": day,
        "cabin": "business",
        **overrides,
    }


def bookings(database: Database) -> list[tuple[object, ...]]:
    return database.rows(
        "SELECT b.customer_id, b.tenant_id, f.origin, f.destination, b.cabin"
        " FROM bookings b JOIN flights f ON f.id = b.flight_id ORDER BY b.created_at"
    )


def what_the_loop_shows(
    invoker: InProcessInvoker, principal: Principal, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The routing loop's own observation for the same proposal, as its model sees it."""
    model = ScriptedModel(
        [
            ToolCall(call_id="c", tool=tool, arguments=json.dumps(arguments)),
            FinalAnswer(text="done"),
        ]
    )
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=model, invoker=invoker, store=MemoryStore()
    )
    state = orchestrator.run(orchestrator.start("loop", "request", principal))
    shown = state.steps[0].shown
    assert shown is not None
    return shown


def run(fn: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        with anyio.fail_after(180):  # a hung server fails the test instead of the suite
            return await fn()

    return anyio.run(bounded)


# --- stdio: `lockgate mcp --user U` as the client's subprocess ------------------------------


@pytest.fixture
def stdio_server(
    database: Database, template_db: Template, tmp_path: Path
) -> Iterator[Callable[[str], StdioServerParameters]]:
    def params(user: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "local.cli", "mcp", "--user", user],
            cwd=str(ROOT),
            env={
                **os.environ,
                "LOCKGATE_DATABASE_URL": database.admin_url,
                "LOCKGATE_HOME": str(tmp_path),
            },
        )

    yield params
    # The command gave the cluster-wide tool roles fresh passwords; restore the suite's.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        migrate(conn, CONTRACTS, template_db.passwords)


def test_stdio_serves_the_local_user_through_the_loops_path(
    stdio_server: Callable[[str], StdioServerParameters],
    database: Database,
    invoker: InProcessInvoker,
) -> None:
    before = bookings(database)

    async def as_alice() -> tuple[set[str], types.CallToolResult, types.CallToolResult]:
        async with Client(stdio_server("alice")) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            booked = await client.call_tool("flight_book", flight())
            invalid = await client.call_tool("flight_book", flight(origin="Paris"))
            return listed, booked, invalid

    listed, booked, invalid = run(as_alice)

    # alice holds every scope: every tool, and her booking is a row of her tenant
    assert listed == ALL_TOOLS
    assert not booked.is_error
    assert booked.structured_content["output"]["origin"] == "CDG"
    rows = bookings(database)
    assert rows[len(before) :] == [("C-1001", "acme", "CDG", "JFK", "business")]
    # a validation error is the tool's error result, exactly what the loop shows its model
    assert invalid.is_error
    loop = what_the_loop_shows(invoker, LOCAL_USERS["alice"], "flight_book", flight(origin="Paris"))
    assert invalid.structured_content == loop
    assert loop["status"] == "error" and "origin" in loop["message"]
    assert bookings(database) == rows


def test_stdio_offers_bob_only_read_tools_and_refuses_a_write(
    stdio_server: Callable[[str], StdioServerParameters],
    database: Database,
    invoker: InProcessInvoker,
) -> None:
    before = bookings(database)

    async def as_bob() -> tuple[set[str], types.CallToolResult, types.CallToolResult]:
        async with Client(stdio_server("bob")) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("flight_book", flight())
            read = await client.call_tool("customer_lookup", {"customer_id": "C-1001"})
            return listed, refused, read

    listed, refused, read = run(as_bob)

    assert listed == READ_TOOLS
    assert refused.is_error
    loop = what_the_loop_shows(invoker, LOCAL_USERS["bob"], "flight_book", flight())
    assert refused.structured_content == loop
    assert set(loop["details"]["available"]) == READ_TOOLS
    assert bookings(database) == before
    assert not read.is_error
    assert read.structured_content["output"]["name"] == "Ada Lovelace"


# --- streamable HTTP: a bearer token on every request --------------------------------------


@asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def test_http_filters_tools_per_token_and_writes_as_that_user(
    http_url: str, tmp_path: Path, database: Database, invoker: InProcessInvoker
) -> None:
    before = bookings(database)
    alice, bob, carol = (issue_token(tmp_path, user) for user in ("alice", "bob", "carol"))

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with http_client(http_url, bob) as client:
            seen["bob_tools"] = {t.name for t in (await client.list_tools()).tools}
            seen["bob_book"] = await client.call_tool("flight_book", flight())
        async with http_client(http_url, alice) as client:
            seen["alice_tools"] = {t.name for t in (await client.list_tools()).tools}
            seen["alice_book"] = await client.call_tool("flight_book", flight())
            seen["alice_bad"] = await client.call_tool("flight_book", flight(date="2001-01-01"))
        async with http_client(http_url, carol) as client:
            seen["carol_reads_acme"] = await client.call_tool(
                "customer_lookup", {"customer_id": "C-1001"}
            )
        return seen

    seen = run(scenario)

    assert seen["bob_tools"] == READ_TOOLS
    assert seen["bob_book"].is_error
    assert seen["alice_tools"] == ALL_TOOLS
    assert not seen["alice_book"].is_error
    assert bookings(database)[len(before) :] == [("C-1001", "acme", "CDG", "JFK", "business")]
    loop = what_the_loop_shows(
        invoker, LOCAL_USERS["alice"], "flight_book", flight(date="2001-01-01")
    )
    assert seen["alice_bad"].is_error and seen["alice_bad"].structured_content == loop
    # tenant isolation: carol (tenant globex) cannot read acme's customer
    carol_read = seen["carol_reads_acme"]
    assert carol_read.is_error
    assert carol_read.structured_content["error_kind"] == "not_found"


def test_http_refuses_a_missing_or_bad_token_and_writes_nothing(
    http_url: str, tmp_path: Path, database: Database
) -> None:
    before = bookings(database)
    forged = issue_token(tmp_path / "elsewhere", "alice")  # signed with another key
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "flight_book", "arguments": flight()},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in (None, "Bearer not-a-token", f"Bearer {forged}"):
        sent = {**headers, **({"Authorization": auth} if auth else {})}
        assert httpx.post(http_url, json=call, headers=sent, timeout=10).status_code == 401

    async def with_forged_token() -> None:
        async with http_client(http_url, forged) as client:
            await client.list_tools()

    # The official client cannot even connect: the server answers its first request with 401.
    with pytest.raises(ExceptionGroup) as raised:
        run(with_forged_token)
    assert raised.group_contains(MCPError)
    assert bookings(database) == before


def test_two_connections_never_share_an_idempotency_key(
    http_url: str, tmp_path: Path, database: Database
) -> None:
    # Given two clients whose first tools/call carries the same JSON-RPC id and the same input
    before = bookings(database)
    token = issue_token(tmp_path, "alice")

    async def book_once() -> types.CallToolResult:
        async with http_client(http_url, token) as client:
            return await client.call_tool("flight_book", flight())

    first, second = run(book_once), run(book_once)
    # Then each is a booking of its own: no connection is answered from another's result
    assert not first.is_error and not second.is_error
    assert (
        first.structured_content["output"]["booking_id"]
        != (second.structured_content["output"]["booking_id"])
    )
    assert len(bookings(database)) == len(before) + 2
