from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields

import pytest

from orchestrator.catalog import Catalog
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator, apply
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import (
    ErrorKind,
    FinalAnswer,
    ModelTurn,
    Observation,
    Outcome,
    SessionState,
    ToolCall,
    Usage,
)
from tests.fakes import ALICE, BOB, EventLog, RecordingInvoker
from tools.registry import CONTRACTS


def call(tool: str, **arguments: object) -> ToolCall:
    return ToolCall(call_id="c", tool=tool, arguments=json.dumps(arguments))


def lookup(customer_id: str) -> ToolCall:
    return call("customer_lookup", customer_id=customer_id)


def session(
    decisions: list[ToolCall | FinalAnswer],
    *,
    invoker: RecordingInvoker | None = None,
    limits: Limits | None = None,
    principal: object = ALICE,
    repeat_last: bool = False,
) -> tuple[SessionState, RecordingInvoker, MemoryStore, EventLog]:
    invoker = invoker or RecordingInvoker()
    store, events = MemoryStore(), EventLog()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=ScriptedModel(decisions, repeat_last=repeat_last),
        invoker=invoker,
        store=store,
        events=events,
        limits=limits,
    )
    state = orchestrator.run(orchestrator.start("s1", "do it", principal))  # type: ignore[arg-type]
    return state, invoker, store, events


def test_final_answer_completes_and_checkpoints() -> None:
    state, invoker, store, events = session([lookup("C-1001"), FinalAnswer(text="done")])

    assert state.outcome is Outcome.COMPLETED
    assert state.answer == "done"
    assert [tool for tool, _ in invoker.calls] == ["customer_lookup"]
    assert store.load("s1") == state
    assert events.kinds() == ["session_started", "model_proposed", "tool_result", "final"]
    assert state.usage.input_tokens > 0


def test_envelope_carries_principal_from_code_and_step_idempotency_key() -> None:
    _, invoker, _, _ = session([lookup("C-1001"), lookup("C-1002"), FinalAnswer(text="x")])

    (_, first), (_, second) = invoker.calls
    assert first["principal"] == ALICE.model_dump(mode="json")
    assert first["input"] == {"customer_id": "C-1001"}
    assert (first["idempotency_key"], second["idempotency_key"]) == ("s1:0", "s1:1")


def test_invalid_arguments_are_fed_back_and_never_invoked() -> None:
    bad = call(
        "flight_book", customer_id="C-1001", origin="Paris", destination="JFK", date="2999-01-01"
    )
    state, invoker, _, events = session([bad, FinalAnswer(text="gave up")])

    assert invoker.calls == []
    observation = state.steps[0].observation
    assert observation is not None
    assert observation.error_kind is ErrorKind.VALIDATION
    assert [e["field"] for e in observation.details["errors"]] == ["origin"]
    assert observation.details["errors"][0]["got"] == "Paris"
    assert not state.steps[0].invoked
    assert "validation_failed" in events.kinds()


def test_unknown_tool_lists_available_tools() -> None:
    state, invoker, _, _ = session([call("delete_everything"), FinalAnswer(text="ok")])

    observation = state.steps[0].observation
    assert observation is not None and observation.error_kind is ErrorKind.VALIDATION
    assert observation.details["available"] == [s.name for s in CONTRACTS]
    assert invoker.calls == []


def test_tools_beyond_the_principals_scopes_are_neither_offered_nor_invoked() -> None:
    seen: list[list[str]] = []

    class Spy(ScriptedModel):
        def decide(self, request: ModelRequest) -> ModelTurn:
            seen.append([t.name for t in request.tools])
            return super().decide(request)

    invoker = RecordingInvoker()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=Spy(
            [call("customer_update", customer_id="C-1001", tier="gold"), FinalAnswer(text="x")]
        ),
        invoker=invoker,
        store=MemoryStore(),
    )
    state = orchestrator.run(orchestrator.start("s", "upgrade", BOB))

    assert seen[0] == ["customer_lookup"]
    assert invoker.calls == []
    assert state.steps[0].observation is not None
    assert state.steps[0].observation.details["available"] == ["customer_lookup"]


def test_step_limit_stops_with_partial_result() -> None:
    decisions: list[ToolCall | FinalAnswer] = [lookup(f"C-{1000 + i}") for i in range(10)]
    state, invoker, _, _ = session(decisions, limits=Limits(max_steps=4))

    assert state.outcome is Outcome.STEP_LIMIT
    assert len(state.steps) == 4
    assert len(invoker.calls) == 4
    assert [p["output"] for p in state.partial_result()] == [{"tool": "customer_lookup"}] * 4


def test_repeated_identical_call_is_answered_from_the_earlier_result_then_a_loop() -> None:
    # Same arguments in another key order and spacing: still the same call.
    repeat = ToolCall(call_id="c", tool="customer_lookup", arguments='{ "customer_id" :"C-1001"}')
    state, invoker, _, _ = session([lookup("C-1001"), repeat], repeat_last=True)

    assert state.outcome is Outcome.LOOP_DETECTED
    # Invoked once: the repeat is answered with the first result, then the third ends it.
    assert len(invoker.calls) == 1
    assert len(state.steps) == 3
    second = state.steps[1]
    assert not second.invoked and second.shown is not None
    assert second.shown["details"]["previous_step"] == 1
    assert second.shown["details"]["previous_result"] == state.steps[0].shown
    assert not state.steps[-1].invoked


def test_spelled_out_defaults_and_key_order_do_not_make_a_new_call() -> None:
    # The same search three ways: `days` left to its default, spelled out, keys reordered.
    date = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    plain = call("flight_search", origin="CDG", destination="JFK", date_from=date)
    spelled = call("flight_search", origin="CDG", destination="JFK", date_from=date, days=7)
    reordered = call("flight_search", days=7, date_from=date, destination="JFK", origin="CDG")
    state, invoker, _, _ = session([plain, spelled, reordered, FinalAnswer(text="done")])

    assert state.outcome is Outcome.LOOP_DETECTED
    assert len(invoker.calls) == 1  # the second is answered from the first


def test_the_principal_sent_is_always_the_sessions_own() -> None:
    # One orchestrator, two runs under the same session id, the first one aborted by a crash
    # mid-step: the second run's tool call carries the second run's principal.
    crashes = [True]

    def crash_once(tool: str, envelope: object) -> Observation:
        if crashes.pop() if crashes else False:
            raise RuntimeError("the invoker fell over")
        return Observation(status="ok", output={"tool": tool})

    invoker = RecordingInvoker(crash_once)
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=ScriptedModel([lookup("C-1001"), FinalAnswer(text="done")]),
        invoker=invoker,
        store=MemoryStore(),
    )
    with pytest.raises(RuntimeError):
        orchestrator.run(orchestrator.start("same", "look up", ALICE))
    orchestrator.run(orchestrator.start("same", "look up", BOB))

    assert [envelope["principal"]["user_id"] for _, envelope in invoker.calls] == [
        ALICE.user_id,
        BOB.user_id,
    ]


def test_same_error_three_times_in_a_row_is_a_loop() -> None:
    def not_found(tool: str, envelope: object) -> Observation:
        return Observation(status="error", error_kind=ErrorKind.NOT_FOUND, message="no customer")

    decisions: list[ToolCall | FinalAnswer] = [lookup(f"C-{2000 + i}") for i in range(10)]
    state, invoker, _, _ = session(decisions, invoker=RecordingInvoker(not_found))

    assert state.outcome is Outcome.LOOP_DETECTED
    assert len(invoker.calls) == 3


def test_different_errors_do_not_count_as_a_streak() -> None:
    answers = iter(["a", "b", "a", "b", "a"])

    def varying(tool: str, envelope: object) -> Observation:
        return Observation(status="error", error_kind=ErrorKind.NOT_FOUND, message=next(answers))

    decisions: list[ToolCall | FinalAnswer] = [lookup(f"C-{3000 + i}") for i in range(5)]
    state, _, _, _ = session([*decisions, FinalAnswer(text="x")], invoker=RecordingInvoker(varying))

    assert state.outcome is Outcome.COMPLETED


def test_model_failure_ends_with_error_and_keeps_progress() -> None:
    state, _, store, _ = session([lookup("C-1001")])  # script runs out after one step

    assert state.outcome is Outcome.ERROR
    assert state.reason is not None and "model failed" in state.reason
    assert len(state.partial_result()) == 1
    assert store.load("s1") == state


def test_token_budget_stops_before_the_next_model_call() -> None:
    decisions: list[ToolCall | FinalAnswer] = [lookup(f"C-{4000 + i}") for i in range(10)]
    state, _, _, _ = session(decisions, limits=Limits(max_tokens=2500))

    assert state.outcome is Outcome.BUDGET_EXHAUSTED
    assert 0 < len(state.steps) < 10


def test_a_session_resumes_from_its_checkpoint() -> None:
    invoker, store = RecordingInvoker(), MemoryStore()
    script = [lookup("C-1001"), lookup("C-1002"), FinalAnswer(text="both")]
    first = Orchestrator(
        catalog=Catalog(CONTRACTS), model=ScriptedModel(script), invoker=invoker, store=store
    )
    first.step(first.start("s9", "two lookups", ALICE))
    # A new worker picks up the checkpoint; a fresh model continues from step 1.
    resumed_model = ScriptedModel(script)
    second = Orchestrator(
        catalog=Catalog(CONTRACTS), model=resumed_model, invoker=invoker, store=store
    )
    checkpoint = store.load("s9")
    assert checkpoint is not None and len(checkpoint.steps) == 1
    state = second.run(checkpoint)

    assert state.outcome is Outcome.COMPLETED
    assert [env["idempotency_key"] for _, env in invoker.calls] == ["s9:0", "s9:1"]


def test_model_error_type_is_the_only_escape() -> None:
    class Broken:
        model_id = "broken"

        def decide(self, request: ModelRequest) -> ModelTurn:
            raise ModelError("throttled for good")

    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=Broken(), invoker=RecordingInvoker(), store=MemoryStore()
    )
    state = orchestrator.run(orchestrator.start("s", "x", ALICE))
    assert state.outcome is Outcome.ERROR


@pytest.mark.parametrize("max_steps", [1, 2, 15])
def test_every_session_ends_within_the_step_limit(max_steps: int) -> None:
    state, _, _, _ = session(
        [lookup("C-1001"), lookup("C-1002")],
        repeat_last=True,
        limits=Limits(max_steps=max_steps, max_repeated_calls=100),
    )
    assert state.done
    assert len(state.steps) <= max_steps


def test_checkpoints_round_trip_through_json() -> None:
    # What a durable store writes and reads back must be the same state, step for step.
    bad = call("customer_update", customer_id="C-1001", tier="diamond")
    state, _, _, _ = session([lookup("C-1001"), bad, FinalAnswer(text="done")])

    adapter = codec(SessionState)
    restored = adapter.validate_json(adapter.dump_json(state))
    assert restored == state
    assert restored.guard.call_counts == state.guard.call_counts


def test_applying_a_step_carries_every_other_field_over() -> None:
    # `apply` builds the next state field by field: a field it forgot would silently reset.
    before = SessionState(
        session_id="s",
        request="r",
        principal=ALICE,
        usage=Usage(input_tokens=5, output_tokens=1),
        usage_by_model={"m": Usage(input_tokens=5, output_tokens=1)},
        cost_usd=0.5,
        retries=2,
        started_at=12.0,
        outcome=Outcome.ERROR,
        exhausted="usd",
        reason="why",
        answer="what",
    )
    turn = ModelTurn(decision=lookup("C-1001"), usage=Usage(input_tokens=3), model_id="m")
    observation = Observation(status="ok", output={"customer_id": "C-1001"})
    after = apply(before, turn, observation, limits=Limits(), cost=0.25, attempts=2, call_key="k")

    changed = {"steps", "usage", "usage_by_model", "cost_usd", "retries", "guard"}
    kept = {"session_id", "request", "principal", "started_at", "outcome", "exhausted"}
    kept |= {"reason", "answer"}
    # A new field must be given a non-default value above and carried over by `_advance`.
    assert {f.name for f in fields(SessionState)} == changed | kept
    for name in kept:
        assert getattr(after, name) == getattr(before, name), name
    assert after.usage == Usage(input_tokens=8, output_tokens=1)
    assert after.usage_by_model == {"m": Usage(input_tokens=8, output_tokens=1)}
    assert (after.cost_usd, after.retries, len(after.steps)) == (0.75, 3, 1)
    assert after.guard.call_counts == {"k": 1}


def test_a_read_repeated_after_a_write_runs_again() -> None:
    # Read, write, read again to confirm: the second read must not be the stale first one.
    update = call("customer_update", customer_id="C-1001", tier="silver")
    state, invoker, _, _ = session(
        [lookup("C-1001"), update, lookup("C-1001"), FinalAnswer(text="ok")]
    )

    assert state.outcome is Outcome.COMPLETED
    assert [tool for tool, _ in invoker.calls] == [
        "customer_lookup",
        "customer_update",
        "customer_lookup",
    ]
