"""Every Converse `stopReason`, the model's text beside a tool call, several calls in a turn
and the bounded read timeout, through botocore's Stubber (checked against the real
bedrock-runtime service model) and a real botocore client."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from orchestrator.models.bedrock import BedrockModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.types import FinalAnswer, Outcome, ToolCall, Unusable, Usage
from tests.models.conftest import run_session
from tests.models.wire import Sleeps
from tools.registry import CONTRACTS

MODEL = "amazon.nova-lite-v1:0"
LOOKUP = {"customer_id": "C-1001"}


def client(**config: Any) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def response(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 200, "outputTokens": 10, "totalTokens": 210},
        "metrics": {"latencyMs": 10},
    }


def use(tool_id: str, name: str, value: Any) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_id, "name": name, "input": value}}


def bare() -> ModelRequest:
    return ModelRequest(system="s", request="r", exchanges=(), tools=CONTRACTS)


def sent_requests(bedrock: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    bedrock.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse",
        lambda params, **_: sent.append(json.loads(json.dumps(params, default=str))),
    )
    return sent


def test_max_tokens_mid_call_is_retried_once_with_twice_the_room() -> None:
    bedrock = client()
    sent = sent_requests(bedrock)
    stub = Stubber(bedrock)
    stub.add_response("converse", response([{"text": '<tool_call>{"name": "cust'}], "max_tokens"))
    stub.add_response("converse", response([use("t1", "customer_lookup", LOOKUP)], "tool_use"))
    with stub:
        turn = BedrockModel(MODEL, client=bedrock).decide(bare())

    assert [r["inferenceConfig"]["maxTokens"] for r in sent] == [1024, 2048]
    assert turn.decision == ToolCall(
        call_id="t1", tool="customer_lookup", arguments=json.dumps(LOOKUP)
    )
    assert turn.usage == Usage(input_tokens=400, output_tokens=20)


def test_truncated_twice_never_completes_with_the_truncated_text() -> None:
    bedrock = client()
    sent = sent_requests(bedrock)
    stub = Stubber(bedrock)
    cut = response([{"text": '<tool_call>{"name": "cust'}], "max_tokens")
    stub.add_response("converse", cut)
    stub.add_response("converse", cut)
    stub.add_response("converse", response([{"text": "Ada is C-1001."}], "end_turn"))
    with stub:
        state, invoker, _ = run_session(BedrockModel(MODEL, client=bedrock))

    first = state.steps[0].turn.decision
    assert isinstance(first, Unusable) and first.problem == "truncated"
    assert invoker.calls == []
    # The model was shown what happened, in its own turn order (assistant, then the note).
    assistant, note = sent[2]["messages"][1:3]
    assert assistant["content"] == [{"text": '<tool_call>{"name": "cust'}]
    assert '"problem": "truncated"' in note["content"][0]["text"]
    assert state.outcome is Outcome.COMPLETED and state.answer == "Ada is C-1001."


@pytest.mark.parametrize(
    ("content", "stop", "problem"),
    [
        ([{"text": "blocked"}], "guardrail_intervened", "filtered"),
        ([{"text": ""}], "content_filtered", "filtered"),
        ([{"text": "{oops"}], "malformed_tool_use", "malformed"),
        ([{"text": ""}], "end_turn", "empty"),
        ([use("t1", " ", LOOKUP)], "tool_use", "malformed"),
    ],
)
def test_abnormal_stops_are_unusable_turns(
    content: list[dict[str, Any]], stop: str, problem: str
) -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_response("converse", response(content, stop))
    with stub:
        turn = BedrockModel(MODEL, client=bedrock).decide(bare())

    assert isinstance(turn.decision, Unusable) and turn.decision.problem == problem


def test_unusable_tool_input_is_a_validation_error_not_an_empty_answer() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_response("converse", response([use("t1", "customer_lookup", ["C-1001"])], "tool_use"))
    stub.add_response("converse", response([{"text": "I could not look it up."}], "end_turn"))
    with stub:
        state, invoker, _ = run_session(BedrockModel(MODEL, client=bedrock))

    observation = state.steps[0].observation
    assert observation is not None and observation.message == "arguments must be a JSON object"
    assert invoker.calls == [] and state.validation_errors == 1


def test_text_beside_the_call_is_kept_and_extra_calls_are_named() -> None:
    bedrock = client()
    sent = sent_requests(bedrock)
    stub = Stubber(bedrock)
    stub.add_response(
        "converse",
        response(
            [
                {"text": "First the customer."},
                use("t1", "customer_lookup", LOOKUP),
                use("t2", "flight_search", {"origin": "CDG"}),
            ],
            "tool_use",
        ),
    )
    stub.add_response("converse", response([{"text": "Done."}], "end_turn"))
    with stub:
        state, invoker, events = run_session(BedrockModel(MODEL, client=bedrock))

    call = state.steps[0].turn.decision
    assert isinstance(call, ToolCall) and call.reason == "First the customer."
    assert call.ignored == ("flight_search",)
    assert [tool for tool, _ in invoker.calls] == ["customer_lookup"]
    assistant, result = sent[1]["messages"][1:3]
    assert assistant["content"][0] == {"text": "First the customer."}
    assert [b["toolUse"]["toolUseId"] for b in assistant["content"][1:]] == ["t1"]
    assert "flight_search" in result["content"][0]["toolResult"]["content"][0]["json"]["note"]
    assert state.answer == "Done."
    proposed = next(e for e in events.events if e.kind == "model_proposed")
    assert proposed.data["ignored"] == ["flight_search"]


def test_a_read_timeout_is_retried_once_not_four_times() -> None:
    bedrock = client(read_timeout=1)
    attempts: list[int] = []

    def hang(**_: Any) -> None:
        attempts.append(1)
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")

    bedrock.meta.events.register("before-send.bedrock-runtime.Converse", hang)
    sleeps = Sleeps()
    with pytest.raises(ModelError, match="kept failing"):
        BedrockModel(MODEL, client=bedrock, sleep=sleeps).decide(bare())
    assert len(attempts) == 2 and len(sleeps.delays) == 1


def test_the_default_client_has_a_bounded_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    model = BedrockModel(MODEL, read_timeout_seconds=25)
    config = model._client.meta.config
    assert config.read_timeout == 25 and config.retries["total_max_attempts"] == 1


def test_a_plain_answer_is_still_a_final_answer() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_response("converse", response([{"text": "All done."}], "end_turn"))
    with stub:
        turn = BedrockModel(MODEL, client=bedrock).decide(bare())
    assert turn.decision == FinalAnswer(text="All done.")
