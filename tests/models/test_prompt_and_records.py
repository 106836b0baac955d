"""What every model is told (today's date in the user's time zone, call shapes), and that
checkpoints written before these fields existed still load."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestrator.catalog import Catalog
from orchestrator.limits import LoopGuard
from orchestrator.loop import Orchestrator
from orchestrator.ports import ModelRequest
from orchestrator.records import as_data, codec
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import FinalAnswer, ModelTurn, SessionState, Unusable
from tests.fakes import ALICE, RecordingInvoker
from tools.kit.contract import EXAMPLE_NOTE
from tools.registry import CONTRACTS


class Recorder:
    """A model that answers at once and keeps what it was shown."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    @property
    def model_id(self) -> str:
        return "scripted:recorder"

    def decide(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        return ModelTurn(decision=FinalAnswer(text="done"), model_id=self.model_id)


def test_the_model_is_told_the_date_in_the_users_time_zone() -> None:
    # 23:30 UTC on 31 December 2030 is already 1 January 2031 in Tokyo.
    instant = dt.datetime(2030, 12, 31, 23, 30, tzinfo=dt.UTC).timestamp()
    model = Recorder()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=model,
        invoker=RecordingInvoker(),
        store=MemoryStore(),
        time_zone="Asia/Tokyo",
        clock=lambda: instant,
    )
    orchestrator.run(orchestrator.start("s", "book something tomorrow", ALICE))

    system = model.requests[0].system
    assert "Today is Wednesday 2031-01-01" in system
    assert "Asia/Tokyo" in system and "08:30" in system
    assert system.startswith(orchestrator.system_prompt)


def test_every_tool_description_carries_its_example_marked_as_one() -> None:
    # The few-shot guidance a weak model gets: one example per tool, in the schema it reads.
    for spec in CONTRACTS:
        assert spec.examples, spec.name
        assert EXAMPLE_NOTE in spec.description


def test_checkpoints_from_before_the_new_fields_still_load() -> None:
    state = SessionState(session_id="s", request="r", principal=ALICE)
    old = as_data(state)
    old["guard"] = {"call_counts": {"k": 1}, "last_error": None, "error_streak": 0}
    old["steps"] = [
        {
            "index": 0,
            "turn": {
                "decision": {
                    "kind": "tool_call",
                    "call_id": "c",
                    "tool": "customer_lookup",
                    "arguments": "{}",
                },
                "usage": {"input_tokens": 1, "output_tokens": 1},
                "model_id": "m",
            },
            "observation": {"status": "ok", "output": {}},
            "invoked": True,
            "attempts": 1,
        }
    ]
    loaded = codec(SessionState).validate_python(old)

    assert loaded.guard == LoopGuard(call_counts={"k": 1})
    assert loaded.steps[0].writes is False
    assert loaded.facts()["writes_done"] == 0


def test_an_unusable_turn_round_trips_through_a_checkpoint() -> None:
    turn = ModelTurn(decision=Unusable(problem="truncated", message="cut off", text="<tool"))
    again = codec(ModelTurn).validate_json(codec(ModelTurn).dump_json(turn))
    assert again == turn


def test_a_script_can_rehearse_an_unusable_turn(tmp_path: Any) -> None:
    from orchestrator.models.scripted import ScriptedModel
    from orchestrator.types import Outcome

    script = tmp_path / "cut.yaml"
    script.write_text(
        "steps:\n"
        "  - unusable: truncated\n"
        '    text: \'<tool_call>{"name": "customer_lo\'\n'
        "  - final: Nothing to do.\n"
    )
    invoker = RecordingInvoker()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=ScriptedModel.from_file(script),
        invoker=invoker,
        store=MemoryStore(),
    )
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.outcome is Outcome.COMPLETED and invoker.calls == []
    first = state.steps[0]
    assert isinstance(first.turn.decision, Unusable) and first.shown is not None
    assert first.shown["details"] == {"problem": "truncated"}
    assert state.validation_errors == 1
