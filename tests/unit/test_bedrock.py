"""The Bedrock adapter against botocore's Stubber: every request is checked against the
real bedrock-runtime service model."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from orchestrator.context import shown_result
from orchestrator.models.bedrock import BedrockModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.types import ErrorKind, Exchange, FinalAnswer, Observation, ToolCall, Usage
from tools.registry import CONTRACTS

MODEL = "amazon.nova-lite-v1:0"


def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def converse_response(content: list[dict[str, Any]], stop: str = "tool_use") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 321, "outputTokens": 12, "totalTokens": 333},
        "metrics": {"latencyMs": 40},
    }


def request_with_history() -> ModelRequest:
    call = ToolCall(call_id="tu-1", tool="customer_lookup", arguments='{"customer_id": "C-1001"}')
    observation = Observation(
        status="error", error_kind=ErrorKind.NOT_FOUND, message="no customer C-1001"
    )
    exchange = Exchange(call=call, result=shown_result(observation, 8000)[0])
    return ModelRequest(
        system="route", request="find C-1001", exchanges=(exchange,), tools=CONTRACTS
    )


def test_tool_use_becomes_a_tool_call_and_history_is_sent() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    expected = {
        "modelId": MODEL,
        "system": [{"text": "route"}],
        "messages": ANY,
        "inferenceConfig": ANY,
        "toolConfig": ANY,
    }
    stub.add_response(
        "converse",
        converse_response(
            [
                {
                    "toolUse": {
                        "toolUseId": "tu-2",
                        "name": "customer_lookup",
                        "input": {"customer_id": "C-1002"},
                    }
                }
            ]
        ),
        expected,
    )
    with stub:
        turn = BedrockModel(MODEL, client=bedrock).decide(request_with_history())
    stub.assert_no_pending_responses()

    assert turn.decision == ToolCall(
        call_id="tu-2", tool="customer_lookup", arguments='{"customer_id": "C-1002"}'
    )
    assert turn.usage == Usage(input_tokens=321, output_tokens=12)


def test_history_and_catalog_shape() -> None:
    sent: dict[str, Any] = {}
    bedrock = client()

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.update(params)

    bedrock.meta.events.register("provide-client-params.bedrock-runtime.Converse", capture)
    stub = Stubber(bedrock)
    stub.add_response(
        "converse", converse_response([{"text": "C-1001 does not exist."}], "end_turn")
    )
    with stub:
        turn = BedrockModel(MODEL, client=bedrock).decide(request_with_history())

    assert turn.decision == FinalAnswer(text="C-1001 does not exist.")
    user, assistant, result = sent["messages"]
    assert user["content"] == [{"text": "find C-1001"}]
    assert assistant["content"][0]["toolUse"]["input"] == {"customer_id": "C-1001"}
    tool_result = result["content"][0]["toolResult"]
    assert tool_result["status"] == "error"
    assert tool_result["content"][0]["json"]["error_kind"] == "not_found"
    names = [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"]]
    assert names == [s.name for s in CONTRACTS]
    schema = sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert json.loads(json.dumps(schema))["properties"]["customer_id"]["pattern"]


def test_throttling_is_retried_with_backoff_then_succeeds() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    stub.add_client_error("converse", "ServiceUnavailableException", "busy", 503)
    stub.add_response("converse", converse_response([{"text": "done"}], "end_turn"))
    sleeps: list[float] = []
    with stub:
        turn = BedrockModel(MODEL, client=bedrock, sleep=sleeps.append).decide(
            request_with_history()
        )

    assert turn.decision == FinalAnswer(text="done")
    assert len(sleeps) == 2
    assert all(0 <= s <= 20 for s in sleeps)


def test_throttling_beyond_the_attempt_budget_is_a_model_error() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    for _ in range(3):
        stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    sleeps: list[float] = []
    with stub, pytest.raises(ModelError, match="kept failing"):
        BedrockModel(MODEL, client=bedrock, attempts=3, sleep=sleeps.append).decide(
            request_with_history()
        )
    assert len(sleeps) == 2
    stub.assert_no_pending_responses()


def test_permanent_errors_are_not_retried() -> None:
    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_client_error("converse", "ValidationException", "bad model id", 400)
    sleeps: list[float] = []
    with stub, pytest.raises(ModelError, match="refused"):
        BedrockModel(MODEL, client=bedrock, sleep=sleeps.append).decide(request_with_history())
    assert sleeps == []


def test_throttling_is_not_retried_past_the_session_deadline() -> None:
    import dataclasses
    import time

    bedrock = client()
    stub = Stubber(bedrock)
    stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
    sleeps: list[float] = []
    request = dataclasses.replace(request_with_history(), deadline=time.time() - 1)
    with stub, pytest.raises(ModelError):
        BedrockModel(MODEL, client=bedrock, sleep=sleeps.append).decide(request)
    assert sleeps == []
    stub.assert_no_pending_responses()


def test_prompt_caching_marks_the_fixed_prefix_and_reports_cached_tokens() -> None:
    sent: dict[str, Any] = {}
    bedrock = client()
    bedrock.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: sent.update(params)
    )
    stub = Stubber(bedrock)
    response = converse_response([{"text": "done"}], "end_turn")
    response["usage"] = {
        "inputTokens": 40,
        "outputTokens": 10,
        "totalTokens": 1050,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 0,
    }
    stub.add_response("converse", response)
    with stub:
        turn = BedrockModel(MODEL, client=bedrock, prompt_cache=True).decide(request_with_history())

    assert sent["system"][-1] == {"cachePoint": {"type": "default"}}
    assert sent["toolConfig"]["tools"][-1] == {"cachePoint": {"type": "default"}}
    assert turn.usage == Usage(input_tokens=40, output_tokens=10, cache_read_tokens=1000)
