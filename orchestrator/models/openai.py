"""OpenAI Chat Completions with function tools in strict mode, through the official SDK.

The same adapter drives any OpenAI-compatible server (llama.cpp's `llama-server`, vLLM,
Ollama, LM Studio): the SDK reads `OPENAI_BASE_URL` and `OPENAI_API_KEY` itself. The tool
schemas are sent strict (every property required, no extras), which OpenAI enforces by
constrained decoding and which servers with JSON-schema-guided decoding honour; a server that
ignores it is still caught by pre-validation. One call per turn is asked for
(`parallel_tool_calls: false`); a turn with several is reduced to its first call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

import openai

from orchestrator.catalog import from_strict_arguments, openai_tools
from orchestrator.models.turns import (
    RawCall,
    RetryPolicy,
    Stop,
    decision_of,
    note_for_model,
    retry_after_seconds,
    unusable,
    unusable_reply,
)
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.types import Decision, ModelTurn, ToolCall, Usage
from tools.kit.contract import ToolSpec

TokenParameter = Literal["max_completion_tokens", "max_tokens"]


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, openai.APIStatusError):
        return retry_after_seconds(exc.response.headers)
    return None


def chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The conversation in Chat Completions form: system, request, then each call (with the
    model's stated reason) and its result as a `tool` message."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": request.system},
        {"role": "user", "content": request.request},
    ]
    for exchange in request.exchanges:
        call = exchange.call
        result = json.dumps(exchange.result, ensure_ascii=False, default=str)
        if isinstance(call, ToolCall):
            messages.append(
                {
                    "role": "assistant",
                    "content": call.reason,
                    "tool_calls": [
                        {
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.tool, "arguments": call.arguments},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call.call_id, "content": result})
        else:
            messages.append({"role": "assistant", "content": unusable_reply(call)})
            messages.append({"role": "user", "content": note_for_model(exchange.result)})
    return messages


class OpenAIModel:
    """`Model` over Chat Completions (`openai:MODEL`)."""

    def __init__(
        self,
        model: str,
        *,
        client: openai.OpenAI | None = None,
        max_tokens: int = 1024,
        temperature: float | None = 0.0,
        token_parameter: TokenParameter | None = None,
        parallel_tool_calls: bool | None = False,
        read_timeout_seconds: float = 30.0,
        attempts: int = 4,
        max_backoff_seconds: float = 20.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if client is None:
            # Credentials and base URL the SDK's own way (OPENAI_API_KEY, OPENAI_BASE_URL).
            client = openai.OpenAI(max_retries=0, timeout=read_timeout_seconds)
        else:
            client = client.with_options(max_retries=0)
        self._client = client
        self._model = model
        self._max_tokens = max_tokens
        self._temperature = temperature
        # OpenAI's own models take max_completion_tokens; most compatible servers max_tokens.
        if token_parameter is None:
            official = "api.openai.com" in str(client.base_url)
            token_parameter = "max_completion_tokens" if official else "max_tokens"
        self._token_parameter: TokenParameter = token_parameter
        self._parallel_tool_calls = parallel_tool_calls
        self._policy = RetryPolicy(
            transient=_transient,
            errors=(openai.OpenAIError,),
            retry_after=_retry_after,
            is_timeout=lambda exc: isinstance(exc, openai.APITimeoutError),
            attempts=attempts,
            max_backoff_seconds=max_backoff_seconds,
            sleep=sleep,
        )

    @property
    def model_id(self) -> str:
        """`openai:MODEL`, as in a model spec."""
        return f"openai:{self._model}"

    def _send(self, request: ModelRequest, max_tokens: int) -> Any:
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": chat_messages(request),
            self._token_parameter: max_tokens,
        }
        if self._temperature is not None:
            kwargs["temperature"] = self._temperature
        if request.tools:
            kwargs["tools"] = openai_tools(request.tools)
            kwargs["tool_choice"] = "auto"
            if self._parallel_tool_calls is not None:
                kwargs["parallel_tool_calls"] = self._parallel_tool_calls
        return self._policy.call(
            "openai", self._client.chat.completions.create, request.deadline, **kwargs
        )

    def decide(self, request: ModelRequest) -> ModelTurn:
        """One completion mapped to exactly one decision; a reply cut off at the output limit
        is asked again once with twice the room."""
        response = self._send(request, self._max_tokens)
        usage = _usage(response)
        if _stop(response) == "truncated":
            response = self._send(request, self._max_tokens * 2)
            usage = usage + _usage(response)
        decision = _decision(response)
        if isinstance(decision, ToolCall):
            decision = _without_strict_nulls(decision, request.tools)
        return ModelTurn(decision=decision, usage=usage, model_id=self.model_id)


def _without_strict_nulls(call: ToolCall, specs: Sequence[ToolSpec]) -> ToolCall:
    """Strict mode makes every property required, an optional one nullable: a `null` that only
    stands for an omitted optional property is dropped (`catalog.from_strict_arguments`), so
    the contract's default applies. Nothing else is touched."""
    spec = next((s for s in specs if s.name == call.tool), None)
    if spec is None:
        return call
    return replace(call, arguments=from_strict_arguments(spec, call.arguments))


def _stop(response: Any) -> Stop:
    if not response.choices:
        return "malformed"
    choice = response.choices[0]
    if choice.finish_reason == "length":
        return "truncated"
    if choice.finish_reason == "content_filter":
        return "filtered"
    if getattr(choice.message, "refusal", None):
        return "refused"
    return "end"


def _decision(response: Any) -> Decision:
    stop = _stop(response)
    if not response.choices:
        return unusable("empty")
    message = response.choices[0].message
    if stop == "refused":
        return unusable("refused", str(message.refusal))
    calls = []
    for call in message.tool_calls or ():
        function = getattr(call, "function", None)
        calls.append(
            RawCall(
                call_id=str(call.id or ""),
                name=str(getattr(function, "name", "") or ""),
                arguments=getattr(function, "arguments", "") or "",
            )
        )
    return decision_of(calls, message.content or "", stop)


def _usage(response: Any) -> Usage:
    """The reported token counts, validated: budgets are computed from them. Cached prompt
    tokens are reported apart, as for every provider."""
    usage = response.usage
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    try:
        return codec(Usage).validate_python(
            {
                "input_tokens": (usage.prompt_tokens or 0) - cached,
                "output_tokens": usage.completion_tokens or 0,
                "cache_read_tokens": cached,
            }
        )
    except ValueError as exc:
        raise ModelError(f"openai reported unusable token counts: {usage!r}") from exc
