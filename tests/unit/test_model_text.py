"""Text the model chooses is untrusted all the way to storage and to the terminal.

A lone surrogate (a code point that is no character, which some providers pass through) in
the arguments is a rejected step the model is told about, and every checkpoint of the
session still encodes as the durable stores write it. Control characters in tool names,
arguments and answers reach the human trace escaped, never as terminal commands.
"""

from __future__ import annotations

import io
from pathlib import Path

from local.trace import TracePrinter
from orchestrator.catalog import Catalog
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import ModelRequest
from orchestrator.records import codec
from orchestrator.types import (
    ErrorKind,
    FinalAnswer,
    ModelTurn,
    Outcome,
    SessionState,
    Step,
    ToolCall,
)
from tests.fakes import ALICE, EventLog, RecordingInvoker
from tools.registry import CONTRACTS

SURROGATE = "\ud800"


class EncodingStore:
    """Checkpoints encoded and decoded exactly as the durable stores do (steps one by one, the
    rest as one document): a checkpoint that cannot be written fails here as it would there."""

    def __init__(self) -> None:
        self.checkpoints: list[SessionState] = []

    def save(self, state: SessionState) -> None:
        steps = tuple(codec(Step).validate_json(codec(Step).dump_json(s)) for s in state.steps)
        rest = codec(SessionState).dump_json(state, exclude={"steps"})
        restored = codec(SessionState).validate_json(rest)
        self.checkpoints.append(
            SessionState(**{**{f: getattr(restored, f) for f in _FIELDS}, "steps": steps})
        )

    def load(self, session_id: str) -> SessionState | None:
        return self.checkpoints[-1] if self.checkpoints else None


_FIELDS = [f for f in SessionState.__dataclass_fields__ if f != "steps"]


class RecordingModel:
    """A scripted model that keeps every request it was sent: what the model was shown."""

    def __init__(self, inner: ScriptedModel) -> None:
        self.inner = inner
        self.requests: list[ModelRequest] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def decide(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        return self.inner.decide(request)


def run(
    model: RecordingModel, events: EventLog | TracePrinter | None = None
) -> tuple[SessionState, RecordingInvoker, EncodingStore]:
    invoker, store = RecordingInvoker(), EncodingStore()
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS), model=model, invoker=invoker, store=store, events=events
    )
    state = orchestrator.run(orchestrator.start("s1", "look up C-1001", ALICE))
    return state, invoker, store


def test_a_lone_surrogate_in_arguments_is_a_rejected_step_the_model_sees(tmp_path: Path) -> None:
    # Given a model whose first call carries a lone surrogate in its raw arguments (the YAML
    # escape below is one code point, U+D800), then corrects itself
    script = tmp_path / "surrogate.yaml"
    script.write_text(
        "steps:\n"
        '  - tool: customer_lookup\n    arguments: "{\\"customer_id\\": \\"C-1001\\ud800\\"}"\n'
        "  - tool: customer_lookup\n    arguments: {customer_id: C-1001}\n"
        "  - final: done\n"
    )
    model = RecordingModel(ScriptedModel.from_file(script))
    first = model.inner.decide(ModelRequest(system="", request="", exchanges=[], tools=())).decision
    assert isinstance(first, ToolCall) and SURROGATE in first.arguments

    state, invoker, store = run(model)

    # Then the session completes, the first step was rejected and nothing was invoked for it
    assert state.outcome is Outcome.COMPLETED
    rejected = state.steps[0]
    assert not rejected.invoked
    assert rejected.observation is not None
    assert rejected.observation.error_kind is ErrorKind.VALIDATION
    assert [envelope["input"] for _, envelope in invoker.calls] == [{"customer_id": "C-1001"}]
    # The model was shown its rejected call and the error before its next turn
    shown = model.requests[1].exchanges
    assert len(shown) == 1 and shown[0].result["status"] == "error"
    assert shown[0].result["error_kind"] == "validation"
    # Every checkpoint was written and reads back as the state it was
    assert len(store.checkpoints) >= len(state.steps)
    assert store.checkpoints[-1] == state


def test_lone_surrogates_in_tool_names_and_answers_never_break_a_checkpoint() -> None:
    model = RecordingModel(
        ScriptedModel(
            [
                ToolCall(call_id=f"c{SURROGATE}", tool=f"lookup{SURROGATE}", arguments="{}"),
                FinalAnswer(text=f"done {SURROGATE}"),
            ]
        )
    )
    events = EventLog()

    state, invoker, store = run(model, events)

    assert state.outcome is Outcome.COMPLETED
    assert not invoker.calls
    assert state.steps[0].observation is not None
    assert state.steps[0].observation.error_kind is ErrorKind.VALIDATION
    assert store.checkpoints[-1] == state
    assert state.answer is not None and SURROGATE not in state.answer
    for event in events.events:  # events are stored with their step: they must encode too
        codec(dict[str, object]).dump_json(event.data)


def test_the_trace_escapes_control_characters_chosen_by_the_model() -> None:
    # Given a model that puts terminal commands in a tool name, arguments and its answer:
    # set the window title, clear the screen, colour text (7-bit and 8-bit CSI), ring the bell
    hostile_tool = "\x1b]0;owned\x07customer_lookup"
    hostile_answer = "\x1b[2J\x1b[31mall good\x9b0m\r\nsecond line\x07"
    model = RecordingModel(
        ScriptedModel(
            [
                ToolCall(call_id="c", tool=hostile_tool, arguments='{"customer_id": "\\u001b[5m"}'),
                ToolCall(call_id="c", tool="customer_lookup", arguments='{"customer_id": "\x1bc"}'),
                FinalAnswer(text=hostile_answer),
            ]
        )
    )
    # The terminal: UTF-8, strict, as a real stdout is.
    raw = io.BytesIO()
    terminal = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)

    state, _, _ = run(model, TracePrinter(terminal))

    assert state.outcome is Outcome.COMPLETED
    text = raw.getvalue().decode("utf-8")
    controls = {c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F}
    assert controls == set()
    # Everything is still there, written out: nothing is silently dropped
    assert "\\x1b]0;owned\\x07customer_lookup" in text
    assert "\\x1b[2J\\x1b[31mall good\\x9b0m\\r" in text
    # The answer keeps its line break; nothing else can start a line of its own
    assert "\nsecond line\\x07" in text
