"""Amazon Bedrock through the Converse API, with the tool catalog as `toolConfig`.

Throttling and service faults are retried with exponential backoff and full jitter
(tenacity); anything else is a `ModelError`. The botocore client's own retries are off so
that one policy, with an injectable sleep, governs every attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from orchestrator.catalog import bedrock_tools
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.retry import StopAtDeadline
from orchestrator.types import Decision, FinalAnswer, ModelTurn, ToolCall, Usage

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


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments)
    except (ValueError, RecursionError):
        return {"unparsable_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def converse_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The conversation in Converse form: the request, then each tool call and its result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": request.request}]}]
    for exchange in request.exchanges:
        call = exchange.call
        use = {"toolUseId": call.call_id, "name": call.tool, "input": _tool_input(call.arguments)}
        result = {
            "toolUseId": call.call_id,
            "content": [{"json": exchange.result}],
            "status": "success" if exchange.result.get("status") == "ok" else "error",
        }
        messages.append({"role": "assistant", "content": [{"toolUse": use}]})
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
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "bedrock-runtime", config=Config(retries={"total_max_attempts": 1})
            )
        self._client = client
        self._model_id = model_id
        self._inference = {"maxTokens": max_tokens, "temperature": temperature}
        self._stop = stop_after_attempt(attempts)
        # Cache the fixed prefix (instructions, then the tool catalog): every turn repeats it.
        self._prompt_cache = prompt_cache
        retry_kwargs: dict[str, Any] = {
            "retry": retry_if_exception(_transient),
            "stop": self._stop,
            "wait": wait_random_exponential(multiplier=0.5, max=max_backoff_seconds),
        }
        if sleep is not None:
            retry_kwargs["sleep"] = sleep
        self._retrying = Retrying(**retry_kwargs)

    @property
    def model_id(self) -> str:
        """The Bedrock model id."""
        return self._model_id

    def decide(self, request: ModelRequest) -> ModelTurn:
        """One Converse call (with retries) mapped to exactly one decision."""
        cache_point = [{"cachePoint": {"type": "default"}}] if self._prompt_cache else []
        kwargs: dict[str, Any] = {
            "modelId": self._model_id,
            "system": [{"text": request.system}, *cache_point],
            "messages": converse_messages(request),
            "inferenceConfig": self._inference,
        }
        if request.tools:
            kwargs["toolConfig"] = {
                "tools": [*bedrock_tools(request.tools), *cache_point],
                "toolChoice": {"auto": {}},
            }
        retrying = self._retrying
        if request.deadline is not None:
            retrying = retrying.copy(stop=self._stop | StopAtDeadline(request.deadline, time.time))
        try:
            response = retrying(self._client.converse, **kwargs)
        except RetryError as exc:
            raise ModelError(f"bedrock kept failing: {exc.last_attempt.exception()}") from exc
        except (ClientError, BotoCoreError) as exc:
            raise ModelError(f"bedrock refused the request: {exc}") from exc
        return ModelTurn(
            decision=_decision(response), usage=_usage(response), model_id=self._model_id
        )


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
    for block in content:
        if "toolUse" in block:
            use = block["toolUse"]
            return ToolCall(
                call_id=str(use["toolUseId"]),
                tool=str(use["name"]),
                arguments=json.dumps(use.get("input", {}), ensure_ascii=False),
            )
    text = "".join(block.get("text", "") for block in content).strip()
    return FinalAnswer(text=text)
