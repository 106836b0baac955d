"""The Anthropic adapter with the real `anthropic` client against a local server that speaks
the Messages API: what the request holds, and what each reply becomes in a session."""

from __future__ import annotations

import datetime as dt
import json

import anthropic
import pytest

from orchestrator.models.anthropic import AnthropicModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.types import ErrorKind, FinalAnswer, Outcome, ToolCall, Unusable, Usage
from tests.models.conftest import run_session
from tests.models.wire import Provider, Sleeps, anthropic_error, anthropic_reply
from tools.registry import CONTRACTS

LOOKUP = {"customer_id": "C-1001"}


def model(provider: Provider, sleeps: Sleeps | None = None, **options: object) -> AnthropicModel:
    client = anthropic.Anthropic(api_key="sk-ant-test-secret", base_url=provider.url)
    return AnthropicModel("claude-test", client=client, sleep=sleeps or Sleeps(), **options)  # type: ignore[arg-type]


def bare(tools: bool = True) -> ModelRequest:
    return ModelRequest(system="s", request="r", exchanges=(), tools=CONTRACTS if tools else ())


def test_request_carries_strict_tools_one_call_per_turn_and_the_dated_prompt(
    provider: Provider,
) -> None:
    provider.queue(
        anthropic_reply(
            text="Looking up the customer.", tool_uses=[("tu_1", "customer_lookup", LOOKUP)]
        ),
        anthropic_reply(text="Ada Lovelace is customer C-1001."),
    )
    state, invoker, events = run_session(model(provider))

    assert state.outcome is Outcome.COMPLETED and state.answer == "Ada Lovelace is customer C-1001."
    assert invoker.calls[0][1]["input"] == LOOKUP
    first = provider.sent[0]
    assert first.path == "/v1/messages"
    assert first.headers["authorization"] == "Bearer sk-ant-test-secret"
    assert first.headers["x-stainless-retry-count"] == "0"
    body = first.body
    assert body["model"] == "claude-test" and body["max_tokens"] == 1024
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert {t["name"] for t in body["tools"]} == {s.name for s in CONTRACTS}
    for tool in body["tools"]:
        assert tool["strict"] is True
        assert tool["input_schema"]["additionalProperties"] is False
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert today in body["system"][0]["text"] and "UTC" in body["system"][0]["text"]
    # The call went back with the model's stated reason, and its result as a tool_result.
    assistant, result = provider.sent[1].body["messages"][1:3]
    assert assistant["content"][0] == {"type": "text", "text": "Looking up the customer."}
    assert assistant["content"][1]["input"] == LOOKUP
    block = result["content"][0]
    assert block["type"] == "tool_result" and block["tool_use_id"] == "tu_1"
    assert block["is_error"] is False
    assert json.loads(block["content"])["output"]["name"] == "Ada Lovelace"
    proposed = next(e for e in events.events if e.kind == "model_proposed")
    assert proposed.data["reason"] == "Looking up the customer."


def test_non_object_tool_input_becomes_a_validation_error(provider: Provider) -> None:
    provider.queue(
        anthropic_reply(tool_uses=[("tu_1", "customer_lookup", "C-1001")]),
        anthropic_reply(tool_uses=[("tu_2", "customer_lookup", LOOKUP)]),
        anthropic_reply(text="Found Ada."),
    )
    state, invoker, _ = run_session(model(provider))

    assert state.outcome is Outcome.COMPLETED and len(invoker.calls) == 1
    rejected = state.steps[0].observation
    assert rejected is not None and rejected.error_kind is ErrorKind.VALIDATION
    assert rejected.message == "arguments must be a JSON object"
    sent_back = provider.sent[1].body["messages"][2]["content"][0]
    assert sent_back["is_error"] is True


def test_truncation_is_retried_once_then_shown_to_the_model(provider: Provider) -> None:
    cut = anthropic_reply(text="I will call customer_lookup with", stop="max_tokens")
    provider.queue(cut, cut, anthropic_reply(text="Sorry, shorter: nothing to do."))
    state, invoker, _ = run_session(model(provider))

    assert [s.body["max_tokens"] for s in provider.sent] == [1024, 2048, 1024]
    first = state.steps[0].turn.decision
    assert isinstance(first, Unusable) and first.problem == "truncated"
    assert invoker.calls == []
    note = provider.sent[2].body["messages"][2]
    assert note["role"] == "user" and '"problem": "truncated"' in note["content"]
    assert state.outcome is Outcome.COMPLETED and state.answer == "Sorry, shorter: nothing to do."


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (anthropic_reply(text="I can't help with that.", stop="refusal"), "refused"),
        (anthropic_reply(text=""), "empty"),
        (anthropic_reply(tool_uses=[("tu_1", "", LOOKUP)]), "malformed"),
    ],
)
def test_abnormal_replies_are_unusable_turns(
    provider: Provider, reply: object, problem: str
) -> None:
    provider.queue(reply)  # type: ignore[arg-type]
    turn = model(provider).decide(bare())

    assert isinstance(turn.decision, Unusable) and turn.decision.problem == problem


def test_several_tool_uses_take_the_first(provider: Provider) -> None:
    provider.queue(
        anthropic_reply(
            tool_uses=[("tu_1", "customer_lookup", LOOKUP), ("tu_2", "flight_search", {})]
        )
    )
    turn = model(provider).decide(bare())

    assert turn.decision == ToolCall(
        call_id="tu_1",
        tool="customer_lookup",
        arguments=json.dumps(LOOKUP),
        ignored=("flight_search",),
    )


def test_429_and_overloaded_are_retried_honouring_retry_after(provider: Provider) -> None:
    provider.queue(
        anthropic_error(429, {"retry-after": "4"}),
        anthropic_error(529),
        anthropic_reply(text="ok", usage=(100, 5, 900, 50)),
    )
    sleeps = Sleeps()
    turn = model(provider, sleeps).decide(bare(tools=False))

    assert turn.decision == FinalAnswer(text="ok")
    assert len(provider.sent) == 3 and sleeps.delays[0] >= 4.0
    assert turn.usage == Usage(
        input_tokens=100, output_tokens=5, cache_read_tokens=900, cache_write_tokens=50
    )
    assert turn.model_id == "anthropic:claude-test"


def test_persistent_5xx_gives_up_and_a_4xx_is_not_retried(provider: Provider) -> None:
    provider.queue(*[anthropic_error(500)] * 4)
    with pytest.raises(ModelError, match="anthropic kept failing"):
        model(provider).decide(bare())
    assert len(provider.sent) == 4

    provider.queue(anthropic_error(400))
    with pytest.raises(ModelError, match="refused the request"):
        model(provider).decide(bare())
    assert len(provider.sent) == 5


def test_strict_off_sends_the_contract_schema_as_it_is(provider: Provider) -> None:
    provider.queue(anthropic_reply(text="ok"))
    model(provider, strict=False).decide(bare())

    tool = provider.sent[0].body["tools"][0]
    assert "strict" not in tool
    assert tool["input_schema"]["properties"]["customer_id"]["pattern"] == "^C-[0-9]{4,8}$"
