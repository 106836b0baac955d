"""The OpenAI adapter with the real `openai` client against a local server that speaks
Chat Completions: what the request holds, and what each reply becomes in a session."""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import openai
import pytest

from orchestrator.models.openai import OpenAIModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.types import ErrorKind, Outcome, ToolCall, Unusable, Usage
from tests.models.conftest import args, run_session
from tests.models.wire import Provider, Sleeps, openai_error, openai_reply
from tools.registry import CONTRACTS

LOOKUP = args(customer_id="C-1001")


def model(provider: Provider, sleeps: Sleeps | None = None, **options: object) -> OpenAIModel:
    client = openai.OpenAI(api_key="sk-test-secret", base_url=f"{provider.url}/v1")
    return OpenAIModel("local-model", client=client, sleep=sleeps or Sleeps(), **options)  # type: ignore[arg-type]


def test_request_carries_strict_tools_one_call_per_turn_and_the_dated_prompt(
    provider: Provider,
) -> None:
    provider.queue(
        openai_reply(tool_calls=[("call_1", "customer_lookup", LOOKUP)]),
        openai_reply(content="Ada Lovelace is customer C-1001."),
    )
    state, invoker, _ = run_session(model(provider), time_zone="Europe/Paris")

    assert state.outcome is Outcome.COMPLETED
    assert invoker.calls[0][1]["input"] == {"customer_id": "C-1001"}
    first = provider.sent[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test-secret"
    body = first.body
    assert body["model"] == "local-model"
    assert body["parallel_tool_calls"] is False and body["tool_choice"] == "auto"
    assert body["max_tokens"] == 1024
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert set(tools) == {s.name for s in CONTRACTS}
    for function in tools.values():
        schema = function["parameters"]
        assert function["strict"] is True
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])
    system = body["messages"][0]
    assert system["role"] == "system"
    paris_today = dt.datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    assert f"Today is {dt.date.fromisoformat(paris_today):%A} {paris_today}" in system["content"]
    assert "Europe/Paris" in system["content"]
    # The second request shows the call and its result as a `tool` message.
    history = provider.sent[1].body["messages"]
    assert history[2]["tool_calls"][0]["function"] == {
        "name": "customer_lookup",
        "arguments": LOOKUP,
    }
    tool_message = history[3]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert json.loads(tool_message["content"])["output"]["name"] == "Ada Lovelace"
    assert state.answer == "Ada Lovelace is customer C-1001."


def test_text_beside_a_call_is_the_steps_reason_in_events_and_history(provider: Provider) -> None:
    provider.queue(
        openai_reply(
            content="I need the profile first.", tool_calls=[("c1", "customer_lookup", LOOKUP)]
        ),
        openai_reply(content="Done."),
    )
    state, _, events = run_session(model(provider))

    decision = state.steps[0].turn.decision
    assert isinstance(decision, ToolCall) and decision.reason == "I need the profile first."
    proposed = next(e for e in events.events if e.kind == "model_proposed")
    assert proposed.data["reason"] == "I need the profile first."
    assert provider.sent[1].body["messages"][2]["content"] == "I need the profile first."


def test_malformed_tool_json_becomes_a_validation_error_the_model_corrects(
    provider: Provider,
) -> None:
    provider.queue(
        openai_reply(tool_calls=[("c1", "customer_lookup", '{"customer_id": "C-1001"')]),
        openai_reply(tool_calls=[("c2", "customer_lookup", LOOKUP)]),
        openai_reply(content="Found Ada."),
    )
    state, invoker, _ = run_session(model(provider))

    assert state.outcome is Outcome.COMPLETED
    assert len(invoker.calls) == 1  # the malformed call ran nothing
    rejected = state.steps[0]
    assert not rejected.invoked and rejected.observation is not None
    assert rejected.observation.error_kind is ErrorKind.VALIDATION
    shown = json.loads(provider.sent[1].body["messages"][3]["content"])
    assert shown["status"] == "error" and "not valid JSON" in shown["message"]
    assert state.validation_errors == 1


def test_truncated_call_is_asked_again_once_with_twice_the_room(provider: Provider) -> None:
    provider.queue(
        openai_reply(tool_calls=[("c1", "customer_lookup", '{"custo')], finish="length"),
        openai_reply(tool_calls=[("c1", "customer_lookup", LOOKUP)], usage=(130, 40, 0)),
    )
    turn = model(provider).decide(
        ModelRequest(system="s", request="r", exchanges=(), tools=CONTRACTS)
    )

    assert [s.body["max_tokens"] for s in provider.sent] == [1024, 2048]
    assert turn.decision == ToolCall(call_id="c1", tool="customer_lookup", arguments=LOOKUP)
    assert turn.usage == Usage(input_tokens=250, output_tokens=70)  # both calls are paid for


def test_truncated_twice_is_an_observation_never_a_final_answer(provider: Provider) -> None:
    cut = openai_reply(content='<tool_call>{"name": "customer_lo', finish="length")
    provider.queue(cut, cut, openai_reply(tool_calls=[("c2", "customer_lookup", LOOKUP)]))
    provider.queue(openai_reply(content="Ada Lovelace."))
    state, invoker, events = run_session(model(provider))

    assert state.outcome is Outcome.COMPLETED and state.answer == "Ada Lovelace."
    first = state.steps[0]
    assert isinstance(first.turn.decision, Unusable) and first.turn.decision.problem == "truncated"
    assert not first.invoked and len(invoker.calls) == 1
    # The model is told, in the next request, that its reply was cut off and nothing ran.
    next_request = provider.sent[2].body["messages"]
    assert next_request[2] == {"role": "assistant", "content": '<tool_call>{"name": "customer_lo'}
    assert (
        next_request[3]["role"] == "user" and '"problem": "truncated"' in next_request[3]["content"]
    )
    failed = next(e for e in events.events if e.kind == "validation_failed")
    assert failed.data["details"] == {"problem": "truncated"}


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (openai_reply(refusal="I can't help with that."), "refused"),
        (openai_reply(content="", finish="content_filter"), "filtered"),
        (openai_reply(content="   "), "empty"),
        (openai_reply(tool_calls=[("c1", "", LOOKUP)]), "malformed"),
    ],
)
def test_abnormal_replies_are_unusable_turns(
    provider: Provider, reply: object, problem: str
) -> None:
    provider.queue(reply)  # type: ignore[arg-type]
    turn = model(provider).decide(
        ModelRequest(system="s", request="r", exchanges=(), tools=CONTRACTS)
    )

    assert isinstance(turn.decision, Unusable) and turn.decision.problem == problem


def test_several_calls_in_one_turn_run_the_first_and_say_so(provider: Provider) -> None:
    provider.queue(
        openai_reply(
            tool_calls=[
                ("c1", "customer_lookup", LOOKUP),
                ("c2", "weather_lookup", args(airport="JFK", date="2031-01-01")),
            ]
        ),
        openai_reply(content="Done."),
    )
    _, invoker, _ = run_session(model(provider))

    assert [tool for tool, _ in invoker.calls] == ["customer_lookup"]
    history = provider.sent[1].body["messages"]
    assert [c["id"] for c in history[2]["tool_calls"]] == ["c1"]  # only the call that ran
    assert "weather_lookup" in json.loads(history[3]["content"])["note"]


def test_429_waits_at_least_retry_after_then_succeeds(provider: Provider) -> None:
    provider.queue(
        openai_error(429, {"retry-after": "3"}),
        openai_error(503),
        openai_reply(content="ok"),
    )
    sleeps = Sleeps()
    turn = model(provider, sleeps).decide(
        ModelRequest(system="s", request="r", exchanges=(), tools=())
    )

    assert turn.decision.kind == "final"
    assert len(provider.sent) == 3  # the SDK's own retries are off: every attempt is ours
    assert sleeps.delays[0] >= 3.0 and len(sleeps.delays) == 2


def test_retry_after_past_the_deadline_gives_up_without_sleeping(provider: Provider) -> None:
    provider.queue(openai_error(429, {"retry-after": "60"}))
    sleeps = Sleeps()
    request = ModelRequest(
        system="s", request="r", exchanges=(), tools=(), deadline=time.time() + 5
    )
    with pytest.raises(ModelError, match="kept failing"):
        model(provider, sleeps).decide(request)
    assert sleeps.delays == [] and len(provider.sent) == 1


def test_persistent_5xx_ends_the_session_as_an_error(provider: Provider) -> None:
    provider.queue(*[openai_error(500)] * 4)
    state, invoker, _ = run_session(model(provider))

    assert state.outcome is Outcome.ERROR and "openai kept failing" in (state.reason or "")
    assert len(provider.sent) == 4 and invoker.calls == []
    assert "sk-test-secret" not in (state.reason or "")


def test_a_permanent_error_is_not_retried(provider: Provider) -> None:
    provider.queue(openai_error(400))
    with pytest.raises(ModelError, match="refused the request"):
        model(provider).decide(ModelRequest(system="s", request="r", exchanges=(), tools=()))
    assert len(provider.sent) == 1


def test_cached_prompt_tokens_are_reported_apart(provider: Provider) -> None:
    provider.queue(openai_reply(content="ok", usage=(1000, 20, 600)))
    turn = model(provider).decide(ModelRequest(system="s", request="r", exchanges=(), tools=()))

    assert turn.usage == Usage(input_tokens=400, output_tokens=20, cache_read_tokens=600)
    assert turn.model_id == "openai:local-model"


def test_a_strict_null_for_an_optional_field_means_not_given(provider: Provider) -> None:
    # Strict schemas make `cabin` required-but-nullable; null must not fail pre-validation.
    arguments = args(
        customer_id="C-1001", origin="CDG", destination="JFK", date="2031-01-01", cabin=None
    )
    provider.queue(
        openai_reply(tool_calls=[("c1", "flight_book", arguments)]),
        openai_reply(content="Booked."),
    )
    state, invoker, _ = run_session(model(provider))

    assert state.outcome is Outcome.COMPLETED
    sent_input = invoker.calls[0][1]["input"]
    assert sent_input["cabin"] == "economy"  # the contract's default
    strict_cabin = next(
        t["function"]["parameters"]["properties"]["cabin"]
        for t in provider.sent[0].body["tools"]
        if t["function"]["name"] == "flight_book"
    )
    assert {"type": "null"} in strict_cabin["anyOf"]


def test_a_null_for_a_required_field_is_still_rejected(provider: Provider) -> None:
    provider.queue(
        openai_reply(tool_calls=[("c1", "customer_lookup", args(customer_id=None))]),
        openai_reply(content="Could not."),
    )
    state, invoker, _ = run_session(model(provider))

    assert invoker.calls == [] and state.validation_errors == 1


def test_a_key_echoed_in_a_provider_error_never_reaches_the_session(provider: Provider) -> None:
    from tests.models.wire import Reply

    echoed = "Incorrect API key provided: sk-test-secret. You can find your key online."
    provider.queue(Reply({"error": {"message": echoed, "type": "invalid_request_error"}}, 401))
    state, _, _ = run_session(model(provider))

    assert state.outcome is Outcome.ERROR
    assert "sk-test-secret" not in (state.reason or "")
    assert "refused the request" in (state.reason or "")
