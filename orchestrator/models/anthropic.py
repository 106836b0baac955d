"""Anthropic Messages with tools, through the official SDK.

Configured the SDK's own way (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`). Tools are sent with
`strict: true` (the schema made expressible by the SDK's `transform_schema`: keywords the
provider cannot enforce move into the description, and pre-validation still checks them), so
the provider guarantees the shape of every call; `disable_parallel_tool_use` asks for one
call per turn, and a turn with several is reduced to its first call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import anthropic

from orchestrator.catalog import provider_schema
from orchestrator.models.turns import (
    RawCall,
    RetryPolicy,
    Stop,
    decision_of,
    encoded,
    note_for_model,
    retry_after_seconds,
    tool_input,
    unusable_reply,
)
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.types import Decision, ModelTurn, ToolCall, Usage
from tools.kit.contract import ToolSpec

_STOPS: dict[str, Stop] = {
    "max_tokens": "truncated",
    "model_context_window_exceeded": "truncated",
    "refusal": "refused",
}


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, anthropic.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, anthropic.APIStatusError):
        return retry_after_seconds(exc.response.headers)
    return None


def messages_tools(specs: Sequence[ToolSpec], *, strict: bool) -> list[dict[str, Any]]:
    """The catalog as Messages `tools`, strict where asked."""
    tools: list[dict[str, Any]] = []
    for spec in specs:
        schema = provider_schema(spec)
        tool: dict[str, Any] = {"name": spec.name, "description": spec.description}
        if strict:
            tool["input_schema"] = anthropic.transform_schema(schema)
            tool["strict"] = True
        else:
            tool["input_schema"] = schema
        tools.append(tool)
    return tools


def conversation(request: ModelRequest) -> list[dict[str, Any]]:
    """The request, then each call (with the model's stated reason) and its result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": request.request}]
    for exchange in request.exchanges:
        call = exchange.call
        if isinstance(call, ToolCall):
            content: list[dict[str, Any]] = []
            if call.reason:
                content.append({"type": "text", "text": call.reason})
            content.append(
                {
                    "type": "tool_use",
                    "id": call.call_id,
                    "name": call.tool,
                    "input": tool_input(call.arguments),
                }
            )
            messages.append({"role": "assistant", "content": content})
            result = {
                "type": "tool_result",
                "tool_use_id": call.call_id,
                "content": json.dumps(exchange.result, ensure_ascii=False, default=str),
                "is_error": exchange.result.get("status") != "ok",
            }
            messages.append({"role": "user", "content": [result]})
        else:
            messages.append({"role": "assistant", "content": unusable_reply(call)})
            messages.append({"role": "user", "content": note_for_model(exchange.result)})
    return messages


class AnthropicModel:
    """`Model` over the Messages API (`anthropic:MODEL`)."""

    def __init__(
        self,
        model: str,
        *,
        client: anthropic.Anthropic | None = None,
        max_tokens: int = 1024,
        strict: bool = True,
        prompt_cache: bool = False,
        read_timeout_seconds: float = 30.0,
        attempts: int = 4,
        max_backoff_seconds: float = 20.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if client is None:
            # Credentials and base URL the SDK's own way (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL).
            client = anthropic.Anthropic(max_retries=0, timeout=read_timeout_seconds)
        else:
            client = client.with_options(max_retries=0)
        self._client = client
        self._model = model
        self._max_tokens = max_tokens
        self._strict = strict
        self._prompt_cache = prompt_cache
        self._policy = RetryPolicy(
            transient=_transient,
            errors=(anthropic.AnthropicError,),
            retry_after=_retry_after,
            is_timeout=lambda exc: isinstance(exc, anthropic.APITimeoutError),
            attempts=attempts,
            max_backoff_seconds=max_backoff_seconds,
            sleep=sleep,
        )

    @property
    def model_id(self) -> str:
        """`anthropic:MODEL`, as in a model spec."""
        return f"anthropic:{self._model}"

    def _send(self, request: ModelRequest, max_tokens: int) -> Any:
        system: dict[str, Any] = {"type": "text", "text": request.system}
        kwargs: dict[str, Any] = {
            "model": self._model,
            "max_tokens": max_tokens,
            "system": [system],
            "messages": conversation(request),
        }
        if request.tools:
            tools = messages_tools(request.tools, strict=self._strict)
            if self._prompt_cache:  # instructions + catalog: the fixed prefix of every turn
                tools[-1] = {**tools[-1], "cache_control": {"type": "ephemeral"}}
            kwargs["tools"] = tools
            kwargs["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        return self._policy.call(
            "anthropic", self._client.messages.create, request.deadline, **kwargs
        )

    def decide(self, request: ModelRequest) -> ModelTurn:
        """One message mapped to exactly one decision; a reply cut off at the output limit is
        asked again once with twice the room."""
        response = self._send(request, self._max_tokens)
        usage = _usage(response)
        if response.stop_reason == "max_tokens":
            response = self._send(request, self._max_tokens * 2)
            usage = usage + _usage(response)
        return ModelTurn(decision=_decision(response), usage=usage, model_id=self.model_id)


def _decision(response: Any) -> Decision:
    calls: list[RawCall] = []
    text: list[str] = []
    for block in response.content or ():
        if block.type == "tool_use":
            calls.append(
                RawCall(
                    call_id=str(block.id or ""),
                    name=str(block.name or ""),
                    arguments=encoded(block.input),
                )
            )
        elif block.type == "text":
            text.append(block.text)
    stop = _STOPS.get(str(response.stop_reason), "end")
    return decision_of(calls, "".join(text), stop)


def _usage(response: Any) -> Usage:
    """The reported token counts, validated: budgets are computed from them."""
    usage = response.usage
    try:
        return codec(Usage).validate_python(
            {
                "input_tokens": usage.input_tokens or 0,
                "output_tokens": usage.output_tokens or 0,
                "cache_read_tokens": getattr(usage, "cache_read_input_tokens", 0) or 0,
                "cache_write_tokens": getattr(usage, "cache_creation_input_tokens", 0) or 0,
            }
        )
    except ValueError as exc:
        raise ModelError(f"anthropic reported unusable token counts: {usage!r}") from exc
