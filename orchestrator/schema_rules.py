"""What each provider accepts as a tool definition, and the conversions that get a contract there.

One source (the contract's Pydantic `Input`), four destinations. Each destination publishes its
own rules; they are written down here as data, and `problems()` checks an exported tool list
against them, so a contract that cannot be expressed somewhere fails the build instead of a
provider call.

Sources (as published when written):
- OpenAI function calling, strict mode ("Structured Outputs", Supported schemas): types string,
  number, boolean, integer, object, array, null, enum, anyOf; string `pattern` and `format`
  (date-time, time, date, duration, email, hostname, ipv4, ipv6, uuid); number `multipleOf`,
  `maximum`, `exclusiveMaximum`, `minimum`, `exclusiveMinimum`; array `minItems`, `maxItems`;
  `$defs`/`$ref`; root an object, not `anyOf`; every property required (optional ones as a
  union with null); `additionalProperties: false` on every object; composition (`allOf`,
  `not`, `if`/`then`/`else`, `dependentRequired`, `dependentSchemas`) unsupported; at most
  5000 properties, 10 levels of nesting, 1000 enum values, 120,000 characters of property
  names, definition names, enum and const values. Function names `^[a-zA-Z0-9_-]{1,64}$`.
- Amazon Bedrock Converse `ToolSpecification`: `name` matching `^[a-zA-Z][a-zA-Z0-9_]*$`, 1 to
  64 characters (the API reference; botocore's service model allows `[a-zA-Z0-9_-]+`, the
  stricter rule is kept), `description` at least one character, `inputSchema.json` an object
  schema; with `strict: true` (structured outputs) the schema must stay within the Draft
  2020-12 subset: no numeric bounds (`minimum`, `maximum`, `multipleOf`), no string length
  bounds, `minItems` only 0 or 1, `additionalProperties` only false, internal `$ref` only, no
  recursion; formats date-time, time, date, duration, email, hostname, uri, ipv4, ipv6, uuid.
- Anthropic Messages `tools`: `name` matching `^[a-zA-Z0-9_-]{1,64}$`, `input_schema` with
  `type: object`; strict tool use compiles the schema with the same grammar rules as Bedrock's
  structured outputs, and limits a request to 24 optional properties and 16 union-typed ones.
- MCP `tools/list`: `name` of 1 to 128 characters from `[A-Za-z0-9_.-]`, `inputSchema` a JSON
  Schema object with `type: object`.

Conversions move what a grammar cannot carry but Lockgate's pre-validation enforces anyway
(length and numeric bounds, defaults, distinct items) into the property's description, where
the model still reads it; a shape a grammar cannot carry (free-form maps, tuples, composition,
recursion) is not converted and fails the check.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Grammar:
    """The JSON Schema subset one provider's constrained decoding accepts."""

    name: str
    keywords: frozenset[str]
    formats: frozenset[str] | None  # None: any format
    all_required: bool  # every property listed in `required`
    closed_objects: bool  # `additionalProperties: false` on every object
    max_min_items: int | None = None  # `minItems` above this is refused
    recursion: bool = True
    max_properties: int | None = None
    max_depth: int | None = None
    max_enum_values: int | None = None
    max_schema_chars: int | None = None
    max_optional: int | None = None  # per request: properties not in `required`
    max_unions: int | None = None  # per request: properties typed as a union


_STRUCTURE = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const"}
    | {"anyOf", "$ref", "$defs", "description", "title"}
)
_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

OPENAI_STRICT = Grammar(
    name="openai strict",
    keywords=_STRUCTURE
    | {"pattern", "format", "multipleOf", "maximum", "exclusiveMaximum", "minimum"}
    | {"exclusiveMinimum", "minItems", "maxItems"},
    formats=_OPENAI_FORMATS,
    all_required=True,
    closed_objects=True,
    max_properties=5000,
    max_depth=10,
    max_enum_values=1000,
    max_schema_chars=120_000,
)
CLAUDE_STRICT = Grammar(
    name="structured outputs (Bedrock and Anthropic strict)",
    keywords=_STRUCTURE | {"pattern", "format", "minItems"},
    formats=_OPENAI_FORMATS | {"uri"},
    all_required=False,
    closed_objects=True,
    max_min_items=1,
    recursion=False,
    max_optional=24,
    max_unions=16,
)

# Assertions a grammar may lack: pre-validation enforces them, so the model is told in words.
_HINTS: dict[str, Callable[[Any], str]] = {
    "minLength": lambda v: f"At least {v} characters.",
    "maxLength": lambda v: f"At most {v} characters.",
    "minimum": lambda v: f"At least {v}.",
    "maximum": lambda v: f"At most {v}.",
    "exclusiveMinimum": lambda v: f"Greater than {v}.",
    "exclusiveMaximum": lambda v: f"Less than {v}.",
    "multipleOf": lambda v: f"A multiple of {v}.",
    "minItems": lambda v: f"At least {v} items.",
    "maxItems": lambda v: f"At most {v} items.",
    "uniqueItems": lambda v: "Items must be distinct." if v else "",
    "default": lambda v: "" if v is None else f"Default: {json.dumps(v)}.",
}
_LOOKAROUND_OR_BACKREF = re.compile(r"\(\?[=!<]|\\[1-9]|\\k<")

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ANTHROPIC_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BEDROCK_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
MCP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class UnexpressibleContract(ValueError):
    """A contract's tool definition breaks a provider's published rules."""


# --- conversions -------------------------------------------------------------------------


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every internal `$ref` replaced by its definition (siblings win) and
    `$defs` dropped. A recursive reference is left in place, with its `$defs`, for the
    check to report where recursion is not allowed."""
    defs = schema.get("$defs", {})
    recursive = False

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            if ref in seen:
                recursive = True
                return node
            target = _resolve(schema, ref)
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, (*seen, ref))
        return {
            k: (walk(v, seen) if k not in {"enum", "const", "default"} else v)
            for k, v in node.items()
            if k != "$defs"
        }

    out: dict[str, Any] = walk(schema, ())
    if recursive and defs:
        out["$defs"] = defs
    return out


def _hint_keys(grammar: Grammar) -> set[str]:
    return {k for k in _HINTS if k not in grammar.keywords}


def relax(schema: dict[str, Any], grammar: Grammar) -> dict[str, Any]:
    """Move the assertions `grammar` lacks into the owning property's description."""
    drop = _hint_keys(grammar)

    def strip(node: Any, hints: list[str]) -> Any:
        if isinstance(node, list):
            return [strip(item, hints) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            too_many_items = (
                key == "minItems"
                and grammar.max_min_items is not None
                and isinstance(value, int)
                and value > grammar.max_min_items
            )
            if key in drop or too_many_items:
                hint = _HINTS[key](value)
                if hint:
                    hints.append(hint)
            elif key == "properties" and isinstance(value, dict):
                out[key] = {name: own(prop) for name, prop in value.items()}
            elif key in {"enum", "const"}:
                out[key] = value
            else:
                out[key] = strip(value, hints)
        return out

    def own(node: Any) -> Any:
        hints: list[str] = []
        out = strip(node, hints)
        if hints and isinstance(out, dict):
            text = " ".join([out.get("description", "").strip(), *hints]).strip()
            out["description"] = text
        return out

    result: dict[str, Any] = own(schema)
    return result


def _accepts_null(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_accepts_null(branch) for branch in node.get("anyOf", []))


def all_required(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI strict's object shape: every property required, an optional one as a union with
    null ("send null for the default"), `additionalProperties: false` everywhere."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {
            k: (walk(v) if k not in {"enum", "const", "properties"} else v) for k, v in node.items()
        }
        if node.get("type") == "object" or "properties" in node:
            required = set(node.get("required", []))
            props: dict[str, Any] = {}
            for name, prop in node.get("properties", {}).items():
                converted = walk(prop)
                if name not in required and not _accepts_null(converted):
                    description = converted.pop("description", None)
                    converted = {"anyOf": [converted, {"type": "null"}]}
                    if description is not None:
                        converted["description"] = f"{description} Send null for the default."
                props[name] = converted
            out["properties"] = props
            out["required"] = list(props)
            # Closed where nothing was said; a declared map stays a map, for the check to refuse.
            out.setdefault("additionalProperties", False)
        return out

    result: dict[str, Any] = walk(schema)
    return result


def drop_strict_nulls(schema: Mapping[str, Any], value: Any) -> Any:
    """The inverse of `all_required` on a value: remove the nulls that only stand for "not
    given" (a property the original schema neither requires nor lets be null), so the
    contract's own default applies. Everything else is left for pre-validation to judge."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for key, item in value.items():
            prop = schema["properties"].get(key)
            if not isinstance(prop, dict):
                out[key] = item
            elif item is None and key not in required and not _accepts_null(prop):
                continue
            else:
                out[key] = drop_strict_nulls(prop, item)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [drop_strict_nulls(schema["items"], item) for item in value]
    if isinstance(value, dict):
        for branch in schema.get("anyOf", []):
            if isinstance(branch, dict) and "properties" in branch:
                return drop_strict_nulls(branch, value)
    return value


def for_grammar(schema: dict[str, Any], grammar: Grammar) -> dict[str, Any]:
    """The schema converted for a strict grammar: definitions inlined, what the grammar
    lacks moved into words, and (OpenAI) every property required."""
    converted = relax(inline_refs(copy.deepcopy(schema)), grammar)
    return all_required(converted) if grammar.all_required else converted


# --- the check ---------------------------------------------------------------------------


def _nodes(node: Any, path: str, depth: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every schema node with its JSON pointer and object nesting depth."""
    if not isinstance(node, dict):
        return
    yield path, node, depth
    inner = depth + (1 if node.get("type") == "object" or "properties" in node else 0)
    for name, prop in (node.get("properties") or {}).items():
        yield from _nodes(prop, f"{path}/properties/{name}", inner)
    for name, sub in (node.get("$defs") or {}).items():
        yield from _nodes(sub, f"{path}/$defs/{name}", depth)
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}/items", inner)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}/additionalProperties", inner)
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for i, branch in enumerate(node.get(key) or []):
            yield from _nodes(branch, f"{path}/{key}/{i}", depth)
    for key in ("not", "if", "then", "else"):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key], f"{path}/{key}", depth)


def _is_recursive(schema: Mapping[str, Any]) -> bool:
    defs = schema.get("$defs") or {}

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for key, value in node.items():
                if key not in {"enum", "const", "default"}:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        name = start.removeprefix("#/$defs/")
        for ref in refs(defs.get(name)):
            if ref == target or (ref not in seen and reaches(ref, target, seen | {ref})):
                return True
        return False

    every = set(refs(schema))
    return "#" in every or any(reaches(ref, ref, {ref}) for ref in every if ref != "#")


def _pattern_problems(where: str, pattern: Any) -> list[str]:
    if not isinstance(pattern, str):
        return []
    found = []
    try:
        re.compile(pattern)
    except re.error as exc:
        found.append(f"{where}: pattern does not compile: {exc}")
    if _LOOKAROUND_OR_BACKREF.search(pattern):
        found.append(f"{where}: pattern uses lookaround or a backreference")
    return found


def _node_problems(where: str, node: dict[str, Any], depth: int, grammar: Grammar) -> list[str]:
    """One node against the grammar's keywords, formats, patterns and object shape."""
    found = [
        f"{where}: keyword `{key}` is not supported by {grammar.name}"
        for key in node
        if key not in grammar.keywords
    ]
    fmt = node.get("format")
    if grammar.formats is not None and fmt is not None and fmt not in grammar.formats:
        found.append(f"{where}: format `{fmt}` is not supported by {grammar.name}")
    found += _pattern_problems(where, node.get("pattern"))
    min_items = node.get("minItems")
    limit = grammar.max_min_items
    if limit is not None and isinstance(min_items, int) and min_items > limit:
        found.append(f"{where}: minItems {min_items} (at most {limit})")
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties") or {}
        if grammar.closed_objects and node.get("additionalProperties") is not False:
            found.append(f"{where}: object without `additionalProperties: false`")
        missing = set(props) - set(node.get("required", []))
        if grammar.all_required and missing:
            found.append(f"{where}: properties not required: {sorted(missing)}")
        if grammar.max_depth is not None and depth > grammar.max_depth:
            found.append(f"{where}: nested {depth} levels deep (at most {grammar.max_depth})")
    return found


def _size_problems(schema: dict[str, Any], grammar: Grammar) -> list[str]:
    """The grammar's whole-schema limits: properties, enum values, characters."""
    properties = enum_values = 0
    chars = sum(len(name) for name in schema.get("$defs") or {})
    for _, node, _ in _nodes(schema, "#", 1):
        props = node.get("properties") or {}
        properties += len(props)
        chars += sum(len(name) for name in props)
        if isinstance(node.get("enum"), list):
            enum_values += len(node["enum"])
            chars += sum(len(str(v)) for v in node["enum"])
        if "const" in node:
            chars += len(str(node["const"]))
    return [
        f"{value} {what} (at most {limit}) for {grammar.name}"
        for limit, value, what in (
            (grammar.max_properties, properties, "properties"),
            (grammar.max_enum_values, enum_values, "enum values"),
            (grammar.max_schema_chars, chars, "characters of names and values"),
        )
        if limit is not None and value > limit
    ]


def schema_problems(schema: Any, grammar: Grammar | None) -> list[str]:
    """What keeps `schema` from being a tool input schema under `grammar` (None: plain JSON
    Schema, only an object root is required)."""
    if not isinstance(schema, dict):
        return ["the input schema is not a JSON object"]
    found: list[str] = []
    if schema.get("type") != "object":
        found.append("the input schema's root is not `type: object`")
    if "anyOf" in schema or "oneOf" in schema:
        found.append("the input schema's root is a union")
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        found.append(f"the input schema is not JSON: {exc}")
    if grammar is None:
        return found
    for where, node, depth in _nodes(schema, "#", 1):
        found += _node_problems(where, node, depth, grammar)
    if not grammar.recursion and _is_recursive(schema):
        found.append(f"recursive schemas are not supported by {grammar.name}")
    return found + _size_problems(schema, grammar)


def _request_limits(schemas: Iterable[dict[str, Any]], grammar: Grammar) -> list[str]:
    """Limits that hold across every strict tool of one request."""
    optional = unions = 0
    for schema in schemas:
        for _, node, _ in _nodes(schema, "#", 1):
            props = node.get("properties") or {}
            optional += len(set(props) - set(node.get("required", [])))
            unions += sum(
                1
                for p in props.values()
                if isinstance(p, dict) and ("anyOf" in p or isinstance(p.get("type"), list))
            )
    found = []
    if grammar.max_optional is not None and optional > grammar.max_optional:
        found.append(f"{optional} optional properties (at most {grammar.max_optional})")
    if grammar.max_unions is not None and unions > grammar.max_unions:
        found.append(f"{unions} union-typed properties (at most {grammar.max_unions})")
    return found


def _named(name: Any, pattern: re.Pattern[str], provider: str) -> list[str]:
    if not isinstance(name, str) or not pattern.match(name):
        return [f"{provider}: tool name {name!r} does not match {pattern.pattern}"]
    return []


def _described(description: Any, provider: str, name: Any) -> list[str]:
    if not isinstance(description, str) or not description.strip():
        return [f"{provider}: {name}: the description is empty"]
    return []


def _prefixed(name: Any, problems: Iterable[str]) -> list[str]:
    return [f"{name}: {problem}" for problem in problems]


def openai_problems(tools: list[dict[str, Any]]) -> list[str]:
    """OpenAI Chat Completions function tools in strict mode."""
    found: list[str] = []
    for tool in tools:
        fn = tool.get("function", {})
        name = fn.get("name")
        if tool.get("type") != "function" or fn.get("strict") is not True:
            found.append(f"openai: {name}: not a strict function tool")
        found += _named(name, OPENAI_NAME, "openai")
        found += _described(fn.get("description"), "openai", name)
        found += _prefixed(name, schema_problems(fn.get("parameters"), OPENAI_STRICT))
    return found


def bedrock_problems(tools: list[dict[str, Any]]) -> list[str]:
    """Bedrock Converse `toolConfig.tools`."""
    found: list[str] = []
    strict_schemas = []
    for tool in tools:
        spec = tool.get("toolSpec", {})
        name = spec.get("name")
        found += _named(name, BEDROCK_NAME, "bedrock")
        found += _described(spec.get("description"), "bedrock", name)
        schema = (spec.get("inputSchema") or {}).get("json")
        strict = spec.get("strict", False)
        if not isinstance(strict, bool):
            found.append(f"bedrock: {name}: strict must be a boolean")
        grammar = CLAUDE_STRICT if strict is True else None
        found += _prefixed(name, schema_problems(schema, grammar))
        if strict is True and isinstance(schema, dict):
            strict_schemas.append(schema)
    return found + _request_limits(strict_schemas, CLAUDE_STRICT)


def anthropic_problems(tools: list[dict[str, Any]]) -> list[str]:
    """Anthropic Messages `tools` (custom tools), optionally with strict tool use."""
    found: list[str] = []
    strict_schemas = []
    for tool in tools:
        name = tool.get("name")
        found += _named(name, ANTHROPIC_NAME, "anthropic")
        found += _described(tool.get("description"), "anthropic", name)
        schema = tool.get("input_schema")
        grammar = CLAUDE_STRICT if tool.get("strict") is True else None
        found += _prefixed(name, schema_problems(schema, grammar))
        if grammar is not None and isinstance(schema, dict):
            strict_schemas.append(schema)
    return found + _request_limits(strict_schemas, CLAUDE_STRICT)


def mcp_problems(tools: list[dict[str, Any]]) -> list[str]:
    """MCP `tools/list` entries."""
    found: list[str] = []
    for tool in tools:
        name = tool.get("name")
        found += _named(name, MCP_NAME, "mcp")
        found += _described(tool.get("description"), "mcp", name)
        found += _prefixed(name, schema_problems(tool.get("inputSchema"), None))
    return found


RULES: dict[str, Callable[[list[dict[str, Any]]], list[str]]] = {
    "bedrock": bedrock_problems,
    "bedrock-strict": bedrock_problems,
    "anthropic": anthropic_problems,
    "anthropic-strict": anthropic_problems,
    "mcp": mcp_problems,
    "openai": openai_problems,
}
"""Each export format's check (the strict variants carry `strict: true`, which selects the
grammar)."""


def ensure(tools: list[dict[str, Any]], format_name: str) -> list[dict[str, Any]]:
    """`tools` if they meet the format's rules; otherwise raise with every problem found."""
    found = RULES[format_name](tools)
    if found:
        raise UnexpressibleContract(f"{format_name}: " + "; ".join(found))
    return tools
