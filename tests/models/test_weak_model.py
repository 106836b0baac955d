"""A scripted "weak model" with the habits small open models showed: it takes the first date
it finds in its prompt (the date Lockgate tells it, else an example value from a tool
description), it repeats a call that succeeded until it is told it already has the answer,
and it claims success whatever happened. Run against the real tools and PostgreSQL, judged
on the rows and on the session's facts."""

from __future__ import annotations

import datetime as dt
import json
import re

from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.loop import Orchestrator
from orchestrator.ports import ModelRequest
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import FinalAnswer, ModelTurn, Outcome, SessionState, ToolCall, Usage
from tests.conftest import Database
from tests.fakes import ALICE
from tools.registry import CONTRACTS

TOLD = re.compile(r"Today is \w+ (\d{4}-\d{2}-\d{2})")
ANY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class WeakModel:
    """Deterministic stand-in for a 1-8B model (see the module docstring)."""

    def __init__(self, *, hears_the_date: bool = True) -> None:
        self.hears_the_date = hears_the_date
        self.dates_used: list[str] = []

    @property
    def model_id(self) -> str:
        return "scripted:weak"

    def _today(self, request: ModelRequest) -> dt.date:
        told = TOLD.search(request.system) if self.hears_the_date else None
        if told:
            return dt.date.fromisoformat(told.group(1))
        # Without a date in its prompt, it takes the first one it sees: a description example.
        text = " ".join(s.description for s in request.tools)
        example = ANY_DATE.search(text)
        return dt.date.fromisoformat(example.group(0) if example else "2030-05-17")

    def decide(self, request: ModelRequest) -> ModelTurn:
        history = request.exchanges
        last = json.dumps(history[-1].result) if history else ""
        if "previous_result" in last:  # told it already has the answer
            decision: ToolCall | FinalAnswer = FinalAnswer(text="Booked Grace on CDG->JFK.")
        elif not history:
            decision = ToolCall(
                call_id="w0", tool="customer_lookup", arguments='{"customer_id": "C-1002"}'
            )
        else:
            day = (self._today(request) + dt.timedelta(days=10)).isoformat()
            self.dates_used.append(day)
            arguments = {
                "customer_id": "C-1002",
                "origin": "CDG",
                "destination": "JFK",
                "date": day,
            }
            decision = ToolCall(
                call_id=f"w{len(history)}", tool="flight_book", arguments=json.dumps(arguments)
            )
        return ModelTurn(
            decision=decision, usage=Usage(input_tokens=1, output_tokens=1), model_id=self.model_id
        )


def run(invoker: InProcessInvoker, model: WeakModel) -> SessionState:
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=model, invoker=invoker, store=MemoryStore()
    )
    return orchestrator.run(
        orchestrator.start("weak", "Book Grace (C-1002) CDG to JFK in 10 days", ALICE)
    )


def bookings(database: Database) -> list[tuple[object, ...]]:
    return database.rows(
        "SELECT b.customer_id, f.origin, f.destination, f.departs_at::date"
        " FROM bookings b JOIN flights f ON f.id = b.flight_id"
    )


def test_told_the_date_and_answered_on_a_repeat_the_weak_model_books_once(
    invoker: InProcessInvoker, database: Database
) -> None:
    model = WeakModel()
    state = run(invoker, model)

    in_10_days = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)
    assert bookings(database) == [("C-1002", "CDG", "JFK", in_10_days)]  # one row, not two
    assert state.outcome is Outcome.COMPLETED
    _lookup, booked, repeat, _final = state.steps
    assert booked.invoked and not repeat.invoked  # the repeat was answered, not run
    assert repeat.shown is not None and repeat.shown["details"]["previous_result"] == booked.shown
    assert booked.shown is not None and "do not repeat it" in booked.shown["note"]
    assert state.facts() == {
        "writes_done": 1,
        "last_write_ok": True,
        "validation_errors": 1,
        "tool_retries": 0,
    }


def test_without_the_date_the_weak_model_copies_the_example_and_the_facts_say_so(
    invoker: InProcessInvoker, database: Database
) -> None:
    model = WeakModel(hears_the_date=False)
    state = run(invoker, model)

    # The example date is years ahead: no flight, no booking, and a session that does not
    # pass for a success whatever the model would claim.
    assert model.dates_used[0] > "2030-01-01"
    assert bookings(database) == []
    assert state.outcome is Outcome.LOOP_DETECTED
    assert state.writes_done == 0 and state.last_write_ok is False
