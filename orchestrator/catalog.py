"""The tool catalog: built from the contracts, filtered per principal, exported per provider.

It is also the first gate for model output: a proposed call becomes a validated input here
or an exact error for the model, before anything is invoked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from orchestrator.limits import Limits
from orchestrator.records import record
from orchestrator.types import ErrorKind, Observation, Principal, ToolCall
from tools.kit.contract import ToolSpec
from tools.kit.validation import describe_errors


@record
class ValidCall:
    """A call that passed pre-validation: the tool and its normalized input."""

    spec: ToolSpec
    input: dict[str, Any]


def _rejected(message: str, **details: Any) -> Observation:
    return Observation(
        status="error", error_kind=ErrorKind.VALIDATION, message=message, details=details
    )


def _shape_problem(value: Any, limits: Limits) -> tuple[str, str] | None:
    """The limit broken (its name and a message): nesting deeper or a string longer than the
    limits allow, found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_argument_depth:
            return (
                "max_argument_depth",
                f"arguments nested deeper than {limits.max_argument_depth} levels",
            )
        if isinstance(node, str) and len(node) > limits.max_string_chars:
            return (
                "max_string_chars",
                f"a string argument is longer than {limits.max_string_chars} characters",
            )
        if isinstance(node, dict):
            stack.extend((key, depth) for key in node)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return None


def _not_unicode(text: str) -> str:
    """Where text stops being valid Unicode, for the model (the text itself cannot be shown)."""
    at = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
    where = f" at character {at} (U+{ord(text[at]):04X})" if at is not None else ""
    return (
        f"arguments are not valid JSON: not valid Unicode text, a lone surrogate{where}; "
        "send complete characters only"
    )


class Catalog:
    """All registered tools, and the subset each principal may be shown."""

    def __init__(self, specs: Iterable[ToolSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._visible: dict[frozenset[str], tuple[ToolSpec, ...]] = {}

    @property
    def specs(self) -> Sequence[ToolSpec]:
        """Every registered tool."""
        return tuple(self._specs.values())

    def visible_to(self, principal: Principal) -> tuple[ToolSpec, ...]:
        """Tools whose required scopes the principal holds: nothing else is offered."""
        visible = self._visible.get(principal.scopes)
        if visible is None:
            visible = tuple(s for s in self._specs.values() if s.scopes <= principal.scopes)
            self._visible[principal.scopes] = visible
        return visible

    def prepare(
        self, call: ToolCall, principal: Principal, limits: Limits
    ) -> ValidCall | Observation:
        """Check a proposed call; return a valid call or the exact error for the model."""
        spec = self._specs.get(call.tool)
        if spec is None or not spec.scopes <= principal.scopes:
            offered = self.visible_to(principal)
            names = ", ".join(s.name for s in offered) or "(none)"
            return _rejected(
                f"unknown tool {call.tool!r}; available tools: {names}",
                available=[s.name for s in offered],
            )
        # A character is 1 to 4 bytes in UTF-8: only long text needs encoding to be measured.
        size = len(call.arguments)
        if size * 4 > limits.max_argument_bytes:
            size = len(call.arguments.encode(errors="surrogatepass"))
        if size > limits.max_argument_bytes:
            return _rejected(
                f"arguments too large: {size} bytes, at most {limits.max_argument_bytes}",
                limit="max_argument_bytes",
            )
        try:
            parsed = from_json(call.arguments)
        except TypeError:  # the text itself is not valid Unicode (a lone surrogate)
            return _rejected(_not_unicode(call.arguments))
        except ValueError as exc:
            if "recursion limit" in str(exc):  # the parser's own nesting limit
                return _rejected(
                    f"arguments nested deeper than {limits.max_argument_depth} levels",
                    limit="max_argument_depth",
                )
            return _rejected(f"arguments are not valid JSON: {exc}")
        if not isinstance(parsed, dict):
            return _rejected("arguments must be a JSON object")
        raw = call.arguments
        # No string can be longer than the whole text, and no value nests deeper than its
        # opening brackets: short, flat arguments (the usual case) need no walk.
        if (
            len(raw) > limits.max_string_chars
            or raw.count("[") + raw.count("{") >= limits.max_argument_depth
        ):
            problem = _shape_problem(parsed, limits)
            if problem is not None:
                return _rejected(problem[1], limit=problem[0])
        # pydantic-core's validator and serializer, called directly: `model_validate` and
        # `model_dump` wrap the same two calls in about 2 µs of Python, on every step.
        model = spec.input
        try:
            validated = model.__pydantic_validator__.validate_python(parsed)
        except ValidationError as exc:
            message, details = describe_errors(model, exc)
            return _rejected(message, errors=details)
        normalized = model.__pydantic_serializer__.to_python(validated, mode="json")
        return ValidCall(spec=spec, input=normalized)


def _untitled(node: Any) -> Any:
    """The schema without pydantic's `title`s: they repeat the property names (tokens)."""
    if isinstance(node, dict):
        return {
            k: (_untitled(v) if k != "properties" else {p: _untitled(s) for p, s in v.items()})
            for k, v in node.items()
            if k != "title"
        }
    if isinstance(node, list):
        return [_untitled(item) for item in node]
    return node


@functools.cache
def _schema_cached(spec_name: str, input_model: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _untitled(input_model.model_json_schema())
    schema.pop("description", None)
    return schema


def provider_schema(spec: ToolSpec) -> dict[str, Any]:
    """The input schema a provider is given (computed once per tool; do not mutate)."""
    return _schema_cached(spec.name, spec.input)


def bedrock_tools(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Bedrock Converse `toolConfig.tools`."""
    return [
        {
            "toolSpec": {
                "name": s.name,
                "description": s.description,
                "inputSchema": {"json": provider_schema(s)},
            }
        }
        for s in specs
    ]


def anthropic_tools(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """Anthropic Messages API `tools`."""
    return [
        {"name": s.name, "description": s.description, "input_schema": provider_schema(s)}
        for s in specs
    ]


def mcp_tools(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """MCP `tools/list` entries."""
    return [
        {"name": s.name, "description": s.description, "inputSchema": provider_schema(s)}
        for s in specs
    ]


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI strict mode: every property required (optional ones nullable), no extras."""
    out = dict(schema)
    if out.get("type") == "object" and "properties" in out:
        required = set(out.get("required", []))
        props: dict[str, Any] = {}
        for name, original in out["properties"].items():
            prop = _strict(original)
            prop.pop("default", None)
            prop.pop("title", None)
            if name not in required and "anyOf" not in prop:
                prop = {"anyOf": [prop, {"type": "null"}]}
            props[name] = prop
        out["properties"] = props
        out["required"] = list(props)
        out["additionalProperties"] = False
    return out


def openai_tools(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """OpenAI Chat Completions `tools` in strict mode."""
    return [
        {
            "type": "function",
            "function": {
                "name": s.name,
                "description": s.description,
                "parameters": _strict(provider_schema(s)),
                "strict": True,
            },
        }
        for s in specs
    ]


EXPORTS = {
    "bedrock": bedrock_tools,
    "anthropic": anthropic_tools,
    "mcp": mcp_tools,
    "openai": openai_tools,
}
