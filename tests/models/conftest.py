from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.catalog import Catalog
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.ports import Model
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import Observation, SessionState
from tests.fakes import ALICE, EventLog, RecordingInvoker
from tests.models.wire import Provider, provider_server
from tools.registry import CONTRACTS


@pytest.fixture
def provider() -> Iterator[Provider]:
    with provider_server() as server:
        yield server


def customer(tool: str, envelope: Any) -> Observation:
    if tool == "customer_lookup":
        return Observation(
            status="ok",
            output={"customer_id": envelope["input"]["customer_id"], "name": "Ada Lovelace"},
        )
    return Observation(status="ok", output={"tool": tool})


def run_session(
    model: Model, *, limits: Limits | None = None, time_zone: str = "UTC"
) -> tuple[SessionState, RecordingInvoker, EventLog]:
    invoker, events = RecordingInvoker(customer), EventLog()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=model,
        invoker=invoker,
        store=MemoryStore(),
        events=events,
        limits=limits,
        time_zone=time_zone,
    )
    state = orchestrator.run(orchestrator.start("s-wire", "find customer C-1001", ALICE))
    return state, invoker, events


def in_days(days: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()


def args(**values: object) -> str:
    return json.dumps(values)
