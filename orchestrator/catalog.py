"""The tool catalog: built from the contracts, filtered per principal, exported per provider.

It is also the first gate for model output: a proposed call becomes a validated input here
or an exact error for the model, before anything is invoked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json, to_json

from orchestrator import schema_rules
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
    root = schema.get("$ref")
    if isinstance(root, str) and root.startswith("#/$defs/"):
        # A self-referencing model is written as a reference: every provider wants the object.
        schema = {**schema["$defs"][root.removeprefix("#/$defs/")], "$defs": schema["$defs"]}
    schema.pop("description", None)
    return schema


def provider_schema(spec: ToolSpec) -> dict[str, Any]:
    """The input schema a provider is given (computed once per tool; do not mutate)."""
    return _schema_cached(spec.name, spec.input)


def _key(spec: ToolSpec) -> tuple[str, str, type[Any]]:
    return (spec.name, spec.description, spec.input)


def _exported(
    format_name: str, build: Callable[[ToolSpec], dict[str, Any]]
) -> Callable[[Iterable[ToolSpec]], list[dict[str, Any]]]:
    """An export: each tool built once per contract, every list checked once against the
    format's published rules (`schema_rules`); a contract that cannot be expressed raises
    `UnexpressibleContract`. Callers must not mutate the definitions."""
    by_key: dict[tuple[str, str, type[Any]], ToolSpec] = {}

    @functools.lru_cache(maxsize=256)
    def checked(keys: tuple[tuple[str, str, type[Any]], ...]) -> tuple[dict[str, Any], ...]:
        return tuple(schema_rules.ensure([build(by_key[k]) for k in keys], format_name))

    def export(specs: Iterable[ToolSpec]) -> list[dict[str, Any]]:
        keys = []
        for spec in specs:
            key = _key(spec)
            by_key.setdefault(key, spec)
            keys.append(key)
        return list(checked(tuple(keys)))

    export.__name__ = f"{format_name.replace('-', '_')}_tools"
    return export


def _bedrock(spec: ToolSpec, *, strict: bool) -> dict[str, Any]:
    schema = provider_schema(spec)
    tool: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if strict:
        tool["inputSchema"] = {"json": schema_rules.for_grammar(schema, schema_rules.CLAUDE_STRICT)}
        tool["strict"] = True
    else:
        tool["inputSchema"] = {"json": schema}
    return {"toolSpec": tool}


def _anthropic(spec: ToolSpec, *, strict: bool) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if strict:
        tool["input_schema"] = schema_rules.for_grammar(
            provider_schema(spec), schema_rules.CLAUDE_STRICT
        )
        tool["strict"] = True
    else:
        tool["input_schema"] = provider_schema(spec)
    return tool


def _mcp(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "inputSchema": provider_schema(spec),
    }


def _openai(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": schema_rules.for_grammar(
                provider_schema(spec), schema_rules.OPENAI_STRICT
            ),
            "strict": True,
        },
    }


bedrock_tools = _exported("bedrock", functools.partial(_bedrock, strict=False))
"""Bedrock Converse `toolConfig.tools`."""
bedrock_strict_tools = _exported("bedrock-strict", functools.partial(_bedrock, strict=True))
"""Bedrock Converse `toolConfig.tools` with `strict: true` (structured outputs)."""
anthropic_tools = _exported("anthropic", functools.partial(_anthropic, strict=False))
"""Anthropic Messages API `tools`."""
anthropic_strict_tools = _exported("anthropic-strict", functools.partial(_anthropic, strict=True))
"""Anthropic Messages API `tools` with strict tool use."""
mcp_tools = _exported("mcp", _mcp)
"""MCP `tools/list` entries."""
openai_tools = _exported("openai", _openai)
"""OpenAI Chat Completions `tools` in strict mode: every property required, an optional one
nullable (null means "use the default": see `from_strict_arguments`)."""


def from_strict_arguments(spec: ToolSpec, arguments: str) -> str:
    """Arguments produced under OpenAI strict mode, made what the contract expects: a null
    that only stands for an omitted optional property is removed, so its default applies.
    Anything else (including text that is not JSON) is returned unchanged for pre-validation
    to judge."""
    try:
        parsed = from_json(arguments)
    except ValueError:
        return arguments
    cleaned = schema_rules.drop_strict_nulls(provider_schema(spec), parsed)
    if cleaned == parsed:
        return arguments
    return to_json(cleaned).decode()


EXPORTS: dict[str, Callable[[Iterable[ToolSpec]], list[dict[str, Any]]]] = {
    "bedrock": bedrock_tools,
    "bedrock-strict": bedrock_strict_tools,
    "anthropic": anthropic_tools,
    "anthropic-strict": anthropic_strict_tools,
    "mcp": mcp_tools,
    "openai": openai_tools,
}
