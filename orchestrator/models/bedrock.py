"""Amazon Bedrock through the Converse API, with the tool catalog as `toolConfig`.

Throttling and service faults are retried with exponential backoff and full jitter
(tenacity); anything else is a `ModelError`. The botocore client's own retries are off so
that one policy, with an injectable sleep, governs every attempt, and its read timeout is
bounded (30 s by default, retried once) so that a hung model cannot hold a session for
minutes. Every `stopReason` maps to a decision or to an unusable turn (see `turns`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from pydantic import ValidationError

from orchestrator.catalog import bedrock_tools
from orchestrator.models.turns import (
    RawCall,
    RetryPolicy,
    Stop,
    decision_of,
    encoded,
    note_for_model,
    tool_input,
    unusable_reply,
)
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.types import Decision, ModelTurn, ToolCall, Usage

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
    }
)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in TRANSIENT_CODES
    return isinstance(exc, BotoCoreError)


_STOPS: dict[str, Stop] = {
    "max_tokens": "truncated",
    "model_context_window_exceeded": "truncated",
    "guardrail_intervened": "filtered",
    "content_filtered": "filtered",
    "malformed_model_output": "malformed",
    "malformed_tool_use": "malformed",
}


def converse_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The conversation in Converse form: the request, then each tool call (with the model's
    stated reason) and its result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": request.request}]}]
    for exchange in request.exchanges:
        call = exchange.call
        if not isinstance(call, ToolCall):
            messages.append({"role": "assistant", "content": [{"text": unusable_reply(call)}]})
            messages.append(
                {"role": "user", "content": [{"text": note_for_model(exchange.result)}]}
            )
            continue
        use = {"toolUseId": call.call_id, "name": call.tool, "input": tool_input(call.arguments)}
        result = {
            "toolUseId": call.call_id,
            "content": [{"json": exchange.result}],
            "status": "success" if exchange.result.get("status") == "ok" else "error",
        }
        said = [{"text": call.reason}] if call.reason else []
        messages.append({"role": "assistant", "content": [*said, {"toolUse": use}]})
        messages.append({"role": "user", "content": [{"toolResult": result}]})
    return messages


class BedrockModel:
    """`Model` over `bedrock-runtime` Converse."""

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        attempts: int = 4,
        max_backoff_seconds: float = 20.0,
        sleep: Callable[[float], None] | None = None,
        prompt_cache: bool = False,
        read_timeout_seconds: float = 30.0,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "bedrock-runtime",
                config=Config(
                    retries={"total_max_attempts": 1},
                    read_timeout=read_timeout_seconds,
                    connect_timeout=min(10.0, read_timeout_seconds),
                ),
            )
        self._client = client
        self._model_id = model_id
        self._max_tokens = max_tokens
        self._temperature = temperature
        # Cache the fixed prefix (instructions, then the tool catalog): every turn repeats it.
        self._prompt_cache = prompt_cache
        self._policy = RetryPolicy(
            transient=_transient,
            errors=(ClientError, BotoCoreError),
            is_timeout=lambda exc: isinstance(exc, ReadTimeoutError),
            attempts=attempts,
            max_backoff_seconds=max_backoff_seconds,
            sleep=sleep,
        )

    @property
    def model_id(self) -> str:
        """The Bedrock model id."""
        return self._model_id

    def _send(self, request: ModelRequest, max_tokens: int) -> dict[str, Any]:
        cache_point = [{"cachePoint": {"type": "default"}}] if self._prompt_cache else []
        kwargs: dict[str, Any] = {
            "modelId": self._model_id,
            "system": [{"text": request.system}, *cache_point],
            "messages": converse_messages(request),
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": self._temperature},
        }
        if request.tools:
            kwargs["toolConfig"] = {
                "tools": [*bedrock_tools(request.tools), *cache_point],
                "toolChoice": {"auto": {}},
            }
        response: dict[str, Any] = self._policy.call(
            "bedrock", self._client.converse, request.deadline, **kwargs
        )
        return response

    def decide(self, request: ModelRequest) -> ModelTurn:
        """One Converse call (with retries) mapped to exactly one decision; a reply cut off at
        the output limit is asked again once with twice the room."""
        response = self._send(request, self._max_tokens)
        usage = _usage(response)
        if response.get("stopReason") == "max_tokens":
            response = self._send(request, self._max_tokens * 2)
            usage = usage + _usage(response)
        return ModelTurn(decision=_decision(response), usage=usage, model_id=self._model_id)


def _usage(response: dict[str, Any]) -> Usage:
    """The reported token counts, validated: budgets are computed from them."""
    usage = response.get("usage", {})
    try:
        return codec(Usage).validate_python(
            {
                "input_tokens": usage.get("inputTokens", 0),
                "output_tokens": usage.get("outputTokens", 0),
                "cache_read_tokens": usage.get("cacheReadInputTokens", 0),
                "cache_write_tokens": usage.get("cacheWriteInputTokens", 0),
            }
        )
    except ValidationError as exc:
        raise ModelError(f"bedrock reported unusable token counts: {usage!r}") from exc


def _decision(response: dict[str, Any]) -> Decision:
    content = response.get("output", {}).get("message", {}).get("content", [])
    calls = [
        RawCall(
            call_id=str(block["toolUse"].get("toolUseId") or ""),
            name=str(block["toolUse"].get("name") or ""),
            arguments=encoded(block["toolUse"].get("input")),
        )
        for block in content
        if isinstance(block.get("toolUse"), dict)
    ]
    text = "".join(str(block.get("text", "")) for block in content)
    return decision_of(calls, text, _STOPS.get(str(response.get("stopReason")), "end"))
