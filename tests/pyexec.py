"""Calling python_exec the way the orchestrator does: an envelope into the tool's handler."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.kit.envelope import Principal
from tools.python_exec import handler as python_exec
from tools.python_exec.contract import SPEC

PRINCIPAL = Principal(user_id="alice", tenant_id="acme", scopes=SPEC.scopes)


def call(code: str, inputs: Any = None) -> dict[str, Any]:
    """One call through the tool's Lambda entry point; the response as it would be sent."""
    arguments: dict[str, Any] = {"code": code}
    if inputs is not None:
        arguments["inputs"] = inputs
    return python_exec.handler(
        {
            "principal": PRINCIPAL.model_dump(mode="json"),
            "input": arguments,
            "idempotency_key": "k-1",
        }
    )


def value(code: str, inputs: Any = None) -> Any:
    """The program's result; fails the test with the tool's error otherwise."""
    response = call(code, inputs)
    assert response["status"] == "ok", response
    return response["output"]["result"]


def workdirs() -> set[Path]:
    """The sandbox's working directories that exist now."""
    return set(Path(tempfile.gettempdir()).glob("lockgate-python-*"))


@pytest.fixture
def fast_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One CPU second per program, so bombs end quickly."""
    monkeypatch.setenv("LOCKGATE_PYTHON_CPU_SECONDS", "1")
    python_exec.sandbox_settings.cache_clear()
    yield
    python_exec.sandbox_settings.cache_clear()
