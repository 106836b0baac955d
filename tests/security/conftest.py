from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.types import Observation
from tests.conftest import Database
from tools.registry import CONTRACTS

TABLES = ("customers", "bookings", "airports", "flights", "lockgate_idempotency")
# Tenant B's data: none of it may ever reach tenant A's model.
GLOBEX_DATA = ("Hank Scorpio", "hank@globex.example", "Frank Grimes", "frank@globex.example")


# One valid call per tool: its contract's first example, its dates moved to keep their
# distance from today. A new tool is attacked without an edit here.
VALID: dict[str, dict[str, Any]] = {
    spec.name: spec.example_arguments(as_of=dt.datetime.now(dt.UTC).date())[0] for spec in CONTRACTS
}


class CountingInvoker:
    """The real in-process invoker, counting what actually reaches a tool."""

    def __init__(self, real: InProcessInvoker) -> None:
        self.real = real
        self.calls: list[str] = []

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        self.calls.append(tool)
        return self.real.invoke(tool, envelope)


@pytest.fixture
def invoker(database: Database) -> Iterator[CountingInvoker]:
    real = InProcessInvoker(database.tool_settings())
    yield CountingInvoker(real)
    real.close()


def snapshot(database: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, as the superuser sees them."""
    return {t: database.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}
