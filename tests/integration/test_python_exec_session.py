"""A session that computes with python_exec over rows another tool fetched, on the local stack
(in-process tool handlers, real PostgreSQL, the real child process). The model writes each
program from what it was shown: the search's rows, then the refusal of its first program."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from typing import Any

from orchestrator.catalog import Catalog
from orchestrator.context import estimate_tokens
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.loop import Orchestrator
from orchestrator.ports import ModelRequest
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import (
    Decision,
    ErrorKind,
    FinalAnswer,
    ModelTurn,
    Outcome,
    SessionState,
    ToolCall,
    Usage,
)
from tests.conftest import Database
from tests.fakes import ALICE
from tools.flight_search.contract import SPEC as FLIGHT_SEARCH
from tools.registry import CONTRACTS

TODAY = dt.datetime.now(dt.UTC).date()
SEARCH = FLIGHT_SEARCH.example_arguments(as_of=TODAY)[0]
# A first draft with a habit models have: an `import os` it does not even need.
DRAFT = """\
import os
import statistics
from datetime import datetime, timezone

departures = sorted(datetime.fromisoformat(f["departs_at"]) for f in inputs["flights"])
gaps = [(b - a).total_seconds() / 3600 for a, b in zip(departures, departures[1:])]
result = {
    "flights": len(departures),
    "first": departures[0].astimezone(timezone.utc).isoformat(),
    "last": departures[-1].astimezone(timezone.utc).isoformat(),
    "mean_gap_hours": statistics.mean(gaps),
}
"""


class ReadingModel:
    """Decides from the latest result it was shown, as a model does: searches, hands the rows
    to python_exec, rewrites the program by the refusal's `line`, then answers with the value."""

    model_id = "scripted:reading"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []  # the latest result in each request

    def decide(self, request: ModelRequest) -> ModelTurn:
        return ModelTurn(
            decision=self._decision(request),
            usage=Usage(input_tokens=estimate_tokens(request), output_tokens=1),
            model_id=self.model_id,
        )

    def _decision(self, request: ModelRequest) -> Decision:
        history = request.exchanges
        if not history:
            return ToolCall(call_id="c0", tool="flight_search", arguments=json.dumps(SEARCH))
        last = history[-1]
        self.seen.append(last.result)
        if len(history) == 1 and last.result["status"] == "ok":
            inputs = json.dumps({"flights": last.result["output"]["flights"]})
            return ToolCall(
                call_id="c1",
                tool="python_exec",
                arguments=json.dumps({"code": DRAFT, "inputs": inputs}),
            )
        if len(history) == 2 and last.result["status"] == "error":
            refused = last.result["details"]
            assert isinstance(last.call, ToolCall)
            sent = json.loads(last.call.arguments)
            lines = sent["code"].splitlines()
            if refused["name"] not in refused["allowed"]:
                del lines[refused["line"] - 1]
            arguments = {**sent, "code": "\n".join(lines)}
            return ToolCall(call_id="c2", tool="python_exec", arguments=json.dumps(arguments))
        return FinalAnswer(text=json.dumps(last.result))


def session(invoker: InProcessInvoker, model: ReadingModel) -> SessionState:
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=model, invoker=invoker, store=MemoryStore()
    )
    request = (
        "How many flights are there from London to San Francisco next week, and how far apart?"
    )
    return orchestrator.run(orchestrator.start("py", request, ALICE))


def test_refused_import_reaches_the_model_and_the_rewritten_program_computes_over_the_rows(
    invoker: InProcessInvoker, database: Database
) -> None:
    model = ReadingModel()
    state = session(invoker, model)

    assert state.outcome is Outcome.COMPLETED
    assert state.validation_errors == 1  # the refusal counts as the round-trip it cost
    calls = [s.turn.decision for s in state.steps[:3]]
    assert [c.tool for c in calls if isinstance(c, ToolCall)] == [
        "flight_search",
        "python_exec",
        "python_exec",
    ]
    search, refused, computed = (s.observation for s in state.steps[:3])
    assert search is not None and search.status == "ok"
    # The first program was refused before anything ran, and the model was shown why.
    assert refused is not None and refused.error_kind is ErrorKind.VALIDATION
    assert refused.details["name"] == "os"
    assert refused.details["line"] == 1
    assert "os" not in refused.details["allowed"]
    shown = model.seen[1]
    assert shown["status"] == "error" and shown["error_kind"] == "validation"
    assert shown["details"] == refused.details
    assert computed is not None and computed.status == "ok"
    # The program that ran is the first one without its refused line.
    assert json.loads(calls[2].arguments)["code"].splitlines() == DRAFT.splitlines()[1:]

    # The rows the search returned are the database's, and the values are computed from them.
    rows = database.rows(
        "SELECT flight_no, departs_at FROM flights WHERE origin = %s AND destination = %s"
        " AND departs_at >= %s::date AND departs_at < %s::date + %s::int ORDER BY departs_at",
        SEARCH["origin"],
        SEARCH["destination"],
        SEARCH["date_from"],
        SEARCH["date_from"],
        SEARCH["days"],
    )
    assert len(rows) == SEARCH["days"]
    assert search.output is not None
    assert [
        (f["flight_no"], dt.datetime.fromisoformat(f["departs_at"]))
        for f in search.output["flights"]
    ] == rows
    departures = [departs_at for _, departs_at in rows if isinstance(departs_at, dt.datetime)]
    gaps = [(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(departures)]
    assert computed.output is not None
    assert computed.output["result"] == {
        "flights": len(rows),
        "first": departures[0].astimezone(dt.UTC).isoformat(),
        "last": departures[-1].astimezone(dt.UTC).isoformat(),
        "mean_gap_hours": statistics.mean(gaps),
    }
    assert state.answer is not None and json.loads(state.answer)["output"] == computed.output
