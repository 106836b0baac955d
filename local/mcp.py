"""`lockgate mcp`: the tool catalog over the Model Context Protocol, stdio or streamable HTTP.

An MCP client (a desktop assistant, an IDE, another agent) is one more untrusted proposer of
tool calls. Every call takes the routing loop's own path, the `ToolGate`: the catalog shows
only the tools the principal's scopes allow, the same pre-validation answers with the same
messages, and the same invoker carries the same envelope `{principal, input,
idempotency_key}` to the tool, which checks scopes and tenancy again.

Who the principal is never comes from the client's messages: over stdio it is the configured
local user (the process belongs to them); over HTTP it is the bearer token of each request,
verified like the sessions API's (`local.auth.verify_token`, then `principal_from_claims`).
Each call's idempotency key is `mcp:<connection>:<request id>`: a client resending a request
(same connection, same JSON-RPC id) is answered from the first result, and two connections
never share a key.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from pydantic_core import to_json

from orchestrator.catalog import Catalog, mcp_tools
from orchestrator.context import shown_result
from orchestrator.gate import ToolGate
from orchestrator.limits import Limits
from orchestrator.ports import ToolInvoker
from orchestrator.principal import principal_from_claims
from orchestrator.types import Observation, Principal, ToolCall

SERVER_NAME = "lockgate"
INSTRUCTIONS = (
    "Lockgate's tools. Each call is validated before anything runs; an error result says which "
    "field was wrong and what is expected: correct the call instead of repeating it."
)

PrincipalOf = Callable[[ServerRequestContext[Any, Any]], Principal | None]


class Unauthenticated(Exception):
    """The request carries no verified identity (never reached behind the bearer check)."""


class ToolFace:
    """The catalog as MCP tools for one principal at a time; calls go through the gate.

    Concurrent calls are safe: the invoker runs each in its own tool environment.
    """

    def __init__(self, gate: ToolGate) -> None:
        self.gate = gate

    def tools(self, principal: Principal) -> list[types.Tool]:
        """What `tools/list` answers this principal: only the tools its scopes allow."""
        visible = self.gate.catalog.visible_to(principal)
        return [types.Tool.model_validate(entry) for entry in mcp_tools(visible)]

    def call(
        self,
        principal: Principal,
        name: str,
        arguments: Mapping[str, Any] | None,
        idempotency_key: str,
    ) -> types.CallToolResult:
        """One `tools/call`, exactly as the loop would run the same proposal."""
        call = ToolCall(
            call_id=idempotency_key, tool=name, arguments=to_json(arguments or {}).decode()
        )
        observation, _ = self.gate.run(call, principal, idempotency_key)
        return result_of(observation, self.gate.limits)


def result_of(observation: Observation, limits: Limits) -> types.CallToolResult:
    """The observation as an MCP result: the same JSON the loop shows a model (text), the
    same data structured, and `isError` for every error."""
    shown, _ = shown_result(observation, limits.max_observation_chars)
    return types.CallToolResult(
        content=[types.TextContent(text=to_json(shown, fallback=str).decode())],
        structured_content=shown,
        is_error=observation.status != "ok",
    )


class ConnectionKeys:
    """A random id per MCP connection, so idempotency keys never collide across clients."""

    def __init__(self) -> None:
        self._ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()

    def key(self, ctx: ServerRequestContext[Any, Any]) -> str:
        """`mcp:<connection>:<request id>` for this request."""
        connection = self._ids.get(ctx.session)
        if connection is None:
            connection = self._ids[ctx.session] = uuid.uuid4().hex
        request = ctx.request_id if ctx.request_id is not None else uuid.uuid4().hex
        return f"mcp:{connection}:{request}"


def build_server(face: ToolFace, principal_of: PrincipalOf) -> Server[Any]:
    """The MCP server: `tools/list` and `tools/call`, both for the request's own principal."""
    keys = ConnectionKeys()

    def who(ctx: ServerRequestContext[Any, Any]) -> Principal:
        principal = principal_of(ctx)
        if principal is None:
            raise Unauthenticated("no verified identity on this request")
        return principal

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=face.tools(who(ctx)))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal, key = who(ctx), keys.key(ctx)
        return await anyio.to_thread.run_sync(
            face.call, principal, params.name, params.arguments, key
        )

    return Server(
        SERVER_NAME,
        version="0.1.0",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


# --- stdio: the process belongs to one local user ------------------------------------------


def serve_stdio(face: ToolFace, principal: Principal) -> None:
    """Serve MCP on stdin/stdout for `principal` until the client closes the stream."""
    server = build_server(face, lambda _ctx: principal)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


# --- streamable HTTP: every request carries its own bearer token --------------------------


class BearerTokens:
    """The MCP SDK's token verifier over Lockgate's own: the same claims, the same principal
    as the sessions API. `verify` takes an `Authorization` header value."""

    def __init__(self, verify: Callable[[str | None], Mapping[str, Any] | None]) -> None:
        self._verify = verify

    async def verify_token(self, token: str) -> AccessToken | None:
        """Claims of a valid token as an access token; None refuses the request (401)."""
        claims = self._verify(f"Bearer {token}")
        principal = principal_from_claims(claims)
        if claims is None or principal is None:
            return None
        expires = claims.get("exp")
        return AccessToken(
            token=token,
            client_id=principal.user_id,
            subject=principal.user_id,
            scopes=sorted(principal.scopes),
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            claims=dict(claims),
        )


def principal_from_request(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    """The principal of the HTTP request that carried this message (its verified token)."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, Mapping) else None
    if not isinstance(user, AuthenticatedUser):
        return None
    return principal_from_claims(user.access_token.claims)


def http_app(face: ToolFace, tokens: BearerTokens, port: int) -> Any:
    """The Starlette app serving MCP at `/mcp`, bearer token required on every request."""
    server = build_server(face, principal_from_request)
    base = f"http://127.0.0.1:{port}"
    return server.streamable_http_app(
        host="127.0.0.1",
        auth=AuthSettings(issuer_url=base, resource_server_url=None),  # type: ignore[arg-type]  # pydantic parses the URL
        token_verifier=tokens,
    )


def serve_http(face: ToolFace, tokens: BearerTokens, port: int, out: TextIO) -> None:
    """Serve MCP over streamable HTTP on 127.0.0.1 until interrupted."""
    import uvicorn

    print(f"lockgate mcp: http://127.0.0.1:{port}/mcp", file=out, flush=True)
    config = uvicorn.Config(
        http_app(face, tokens, port), host="127.0.0.1", port=port, log_level="warning"
    )
    uvicorn.Server(config).run()


# --- the local stack ----------------------------------------------------------------------


@contextlib.contextmanager
def local_gate(limits: Limits | None = None) -> Iterator[ToolGate]:
    """A gate over the local stack: migrated PostgreSQL, one role per tool, in-process tools
    (the same invoker `lockgate run` uses), a local weather service."""
    from local.stack import database_server, provision, upstream_services
    from orchestrator.invokers.in_process import InProcessInvoker
    from tools.registry import CONTRACTS

    with database_server() as admin_url, upstream_services() as upstreams:
        invoker = InProcessInvoker(provision(admin_url, upstreams=upstreams))
        try:
            yield ToolGate(Catalog(CONTRACTS), invoker, limits or Limits())
        finally:
            invoker.close()


def lambda_gate(limits: Limits | None = None) -> ToolGate:
    """A gate over the deployed tool functions (`LOCKGATE_TOOL_FUNCTIONS`), as the worker."""
    from orchestrator import wiring
    from tools.registry import CONTRACTS

    invoker: ToolInvoker = wiring.lambda_invoker(wiring.settings())
    return ToolGate(Catalog(CONTRACTS), invoker, limits or Limits())


def run(
    *,
    transport: str,
    principal: Principal | None,
    port: int,
    home: Path,
    invoker: str,
    out: TextIO,
) -> int:
    """`lockgate mcp`: serve until the client leaves (stdio) or Ctrl-C (HTTP)."""
    from local.auth import verify_token

    with contextlib.ExitStack() as stack:
        # On stdio, stdout is the protocol: whatever setting up prints goes to stderr (while
        # serving, the SDK itself keeps stray output off the wire).
        with contextlib.redirect_stdout(sys.stderr if transport == "stdio" else out):
            gate = stack.enter_context(local_gate()) if invoker == "local" else lambda_gate()
        face = ToolFace(gate)
        if transport == "stdio":
            if principal is None:
                raise ValueError("stdio needs a configured local user")
            serve_stdio(face, principal)
        else:
            with contextlib.suppress(KeyboardInterrupt):
                serve_http(face, BearerTokens(lambda h: verify_token(home, h)), port, out)
    return 0
