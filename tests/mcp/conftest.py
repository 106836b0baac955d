"""Fixtures for the MCP face: the local stack's tools over a fresh test database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from local.auth import verify_token
from local.mcp import BearerTokens, ToolFace, http_app
from orchestrator.catalog import Catalog
from orchestrator.gate import ToolGate
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from tools.registry import CONTRACTS


@pytest.fixture
def face(invoker: InProcessInvoker) -> ToolFace:
    return ToolFace(ToolGate(Catalog(CONTRACTS), invoker, Limits()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_url(face: ToolFace, tmp_path: Path) -> Iterator[str]:
    """`lockgate mcp --transport http`'s app, served by uvicorn on a loopback port."""
    port = _free_port()
    tokens = BearerTokens(lambda header: verify_token(tmp_path, header))
    server = uvicorn.Server(
        uvicorn.Config(http_app(face, tokens, port), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(timeout=30)
