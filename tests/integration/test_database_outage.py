"""A database outage mid-session, on the real PostgreSQL: the tool reaches it through a
loopback TCP relay that the test then shuts down (open connections cut, new ones refused).

The outage is an infrastructure error with its own reason, after bounded retries; it is not
a loop the model is blamed for, and what the session achieved before it is kept.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import ErrorKind, FinalAnswer, Observation, Outcome, ToolCall
from tests.conftest import Database
from tests.fakes import ALICE
from tools.kit.settings import ToolSettings
from tools.registry import CONTRACTS


class Relay:
    """Forwards 127.0.0.1:port to the database until `cut()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def relay(database: Database) -> Iterator[Relay]:
    params = conninfo_to_dict(database.admin_url)
    relay = Relay((str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))))
    yield relay
    relay.cut()


class CutAfterFirstCall:
    """The in-process invoker, with the database's network cut right after the first call."""

    def __init__(self, invoker: InProcessInvoker, relay: Relay) -> None:
        self.invoker, self.relay = invoker, relay
        self.calls: list[str] = []

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        observation = self.invoker.invoke(tool, envelope)
        self.calls.append(tool)
        if len(self.calls) == 1:
            self.relay.cut()
        return observation


def lookup(customer_id: str) -> ToolCall:
    return ToolCall(
        call_id="c", tool="customer_lookup", arguments=f'{{"customer_id": "{customer_id}"}}'
    )


def test_a_database_outage_ends_the_session_as_an_error_naming_the_database(
    database: Database, relay: Relay
) -> None:
    # Given customer_lookup's database reached through the relay, cut after the first call
    settings = database.tool_settings()
    credentials = settings["customer_lookup"].database
    assert credentials is not None
    settings["customer_lookup"] = ToolSettings(
        database=credentials.model_copy(update={"port": relay.port}), connect_timeout_seconds=2
    )
    inner = InProcessInvoker(settings)
    invoker = CutAfterFirstCall(inner, relay)
    # and a model that keeps asking for different customers (no repeated call to detect)
    model = ScriptedModel([lookup(f"C-100{i}") for i in range(1, 6)] + [FinalAnswer(text="done")])
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=model,
        invoker=invoker,
        store=MemoryStore(),
        limits=Limits(tool_attempts=3),
        sleep=lambda seconds: None,
    )

    try:
        state = orchestrator.run(orchestrator.start("outage", "look them up", ALICE))
    finally:
        inner.close()

    # Then the session ends as an error that names the database, after the bounded retries
    assert state.outcome is Outcome.ERROR
    assert state.reason is not None and state.reason.startswith("database unavailable")
    assert len(state.steps) == 2
    failed = state.steps[1].observation
    assert failed is not None and failed.error_kind is ErrorKind.TRANSIENT
    assert failed.details["dependency"] == "database"
    assert state.steps[1].attempts == 3 and invoker.calls == ["customer_lookup"] * 4
    # and what the session achieved before the outage is its partial result
    assert [r["output"]["customer_id"] for r in state.partial_result()] == ["C-1001"]
