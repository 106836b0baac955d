"""Every contract through every export format, checked against each provider's published rules.

A contract that one provider cannot express fails here, at build time, not in a provider call.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import botocore.session
import jsonschema
import mcp.types
import pytest
from botocore.validate import ParamValidator
from pydantic import Field, TypeAdapter, ValidationError

from orchestrator.catalog import (
    EXPORTS,
    Catalog,
    ValidCall,
    from_strict_arguments,
    openai_tools,
    provider_schema,
)
from orchestrator.limits import Limits
from orchestrator.schema_rules import RULES, UnexpressibleContract
from orchestrator.types import ToolCall
from tests.fakes import ALICE
from tools.kit.contract import StrictInput, ToolOutput, ToolSpec
from tools.registry import CONTRACTS

FORMATS = sorted(EXPORTS)


def export_problems(specs: tuple[ToolSpec, ...]) -> dict[str, str]:
    """Each format a tool list cannot be exported to, with the reason."""
    failed: dict[str, str] = {}
    for name in FORMATS:
        try:
            tools = EXPORTS[name](specs)
        except UnexpressibleContract as exc:
            failed[name] = str(exc)
            continue
        problems = RULES[name](tools)
        if problems:
            failed[name] = "; ".join(problems)
    return failed


def test_every_registered_contract_exports_to_every_format() -> None:
    assert export_problems(CONTRACTS) == {}
    for name in FORMATS:
        assert len(EXPORTS[name](CONTRACTS)) == len(CONTRACTS)


@pytest.mark.parametrize("name", ["bedrock", "bedrock-strict"])
def test_bedrock_tool_config_is_valid_for_the_converse_service_model(name: str) -> None:
    # botocore's own request validation, against the shipped Converse service model.
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    request = {
        "modelId": "amazon.nova-lite-v1:0",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "toolConfig": {"tools": EXPORTS[name](CONTRACTS)},
    }
    report = ParamValidator().validate(request, model.operation_model("Converse").input_shape)
    assert not report.has_errors(), report.generate_report()


def test_mcp_entries_are_tools_for_the_official_sdk() -> None:
    for entry in EXPORTS["mcp"](CONTRACTS):
        tool = mcp.types.Tool.model_validate(entry)
        assert tool.input_schema["type"] == "object"


@pytest.mark.parametrize("name", FORMATS)
def test_exported_schemas_are_valid_json_schema(name: str) -> None:
    for tool in EXPORTS[name](CONTRACTS):
        schema = (
            tool.get("function", {}).get("parameters")
            or tool.get("input_schema")
            or tool.get("inputSchema")
            or tool["toolSpec"]["inputSchema"]["json"]
        )
        jsonschema.Draft202012Validator.check_schema(schema)


# --- contracts that some provider cannot express ------------------------------------------


class _Out(ToolOutput):
    ok: bool


def _spec(input_model: type[StrictInput], description: str = "Do a thing.") -> ToolSpec:
    return ToolSpec(
        name="thing_do",
        summary=description,
        input=input_model,
        output=_Out,
        scopes=frozenset({"things:read"}),
    )


class FreeFormMap(StrictInput):
    """Arbitrary keys: strict grammars only know closed objects."""

    labels: dict[str, int] = Field(description="Any labels.")


class Pair(StrictInput):
    """A tuple: positional items have no strict-grammar form."""

    point: tuple[int, str] = Field(description="A pair.")


class Node(StrictInput):
    """A recursive shape: structured outputs compile no recursion."""

    value: int = Field(description="A value.")
    children: list[Node] = Field(default_factory=list, description="Child nodes.")


class _Cat(StrictInput):
    kind: Literal["cat"]


class _Dog(StrictInput):
    kind: Literal["dog"]


class Tagged(StrictInput):
    """A discriminated union: pydantic writes `oneOf`, which no strict grammar accepts."""

    pet: _Cat | _Dog = Field(discriminator="kind", description="The pet.")


class Fine(StrictInput):
    """Expressible everywhere; only the description is missing."""

    value: int = Field(description="A value.")


@pytest.mark.parametrize(
    ("spec", "failing"),
    [
        (_spec(FreeFormMap), {"openai", "bedrock-strict", "anthropic-strict"}),
        (_spec(Pair), {"openai", "bedrock-strict", "anthropic-strict"}),
        (_spec(Node), {"bedrock-strict", "anthropic-strict"}),
        (_spec(Tagged), {"openai", "bedrock-strict", "anthropic-strict"}),
        (_spec(Fine, description=" "), set(FORMATS)),
    ],
    ids=["free-form-map", "tuple", "recursive", "one-of", "empty-description"],
)
def test_a_contract_a_provider_cannot_express_fails_the_build(
    spec: ToolSpec, failing: set[str]
) -> None:
    # Given a contract that some provider's rules refuse, registered beside the real ones
    failed = export_problems((*CONTRACTS, spec))
    # Then exactly those formats fail, each saying why, and asking for one raises
    assert set(failed) == failing
    for name in failing:
        assert "thing_do" in failed[name]
        with pytest.raises(UnexpressibleContract):
            EXPORTS[name]((spec,))


def test_the_rules_themselves_refuse_hand_made_breakage() -> None:
    # The checks do not trust the converter: definitions broken by hand are reported.
    tool = json.loads(json.dumps(openai_tools(CONTRACTS)[3]))
    params = tool["function"]["parameters"]
    params["required"].remove("cabin")
    params["properties"]["origin"]["minLength"] = 3
    params["properties"]["date"]["format"] = "iso-date"
    params["additionalProperties"] = True
    problems = " ".join(RULES["openai"]([tool]))
    for expected in ("not required", "minLength", "iso-date", "additionalProperties"):
        assert expected in problems
    bedrock = json.loads(json.dumps(EXPORTS["bedrock-strict"](CONTRACTS)[2]))
    bedrock["toolSpec"]["name"] = "2-flight-search"
    bedrock["toolSpec"]["inputSchema"]["json"]["properties"]["days"]["maximum"] = 31
    problems = " ".join(RULES["bedrock-strict"]([bedrock]))
    assert "does not match" in problems and "maximum" in problems
    anthropic = {"name": "a" * 65, "description": "x", "input_schema": {"type": "array"}}
    problems = " ".join(RULES["anthropic"]([anthropic]))
    assert "does not match" in problems and "type: object" in problems


# --- what a strict schema loses is kept in words, and its nulls map back to defaults -------


def _description(tool_schema: dict[str, Any], prop: str) -> str:
    return str(tool_schema["properties"][prop]["description"])


def test_bounds_a_grammar_lacks_are_moved_into_the_description() -> None:
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in openai_tools(CONTRACTS)}
    assert "At most 254 characters" in _description(by_name["customer_update"], "email")
    # OpenAI keeps numeric bounds; structured outputs on Bedrock and Anthropic do not.
    assert by_name["flight_search"]["properties"]["days"]["anyOf"][0]["maximum"] == 31
    claude = {t["name"]: t["input_schema"] for t in EXPORTS["anthropic-strict"](CONTRACTS)}
    days = claude["flight_search"]["properties"]["days"]
    assert "maximum" not in days and "At most 31" in days["description"]
    assert "Default: 7" in days["description"]


def _rejects_null(spec: ToolSpec, field: str) -> bool:
    try:
        TypeAdapter(spec.input.model_fields[field].annotation).validate_python(None)
    except ValidationError:
        return True
    return False


def test_strict_nulls_for_omitted_optionals_are_dropped_only_where_null_is_not_a_value() -> None:
    seen = 0
    for spec in CONTRACTS:
        optional = set(provider_schema(spec)["properties"]) - set(
            provider_schema(spec).get("required", [])
        )
        for field in optional:
            seen += 1
            cleaned = json.loads(from_strict_arguments(spec, json.dumps({field: None})))
            assert (field in cleaned) is not _rejects_null(spec, field), (spec.name, field)
    assert seen >= 3  # cabin, days (defaults) and email, tier (nullable) today


def test_a_strict_openai_call_validates_like_the_same_call_without_its_nulls() -> None:
    # Given the arguments a strict-mode model must send: every property, null for the default
    day = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    strict = {
        "customer_id": "C-1001",
        "origin": "CDG",
        "destination": "JFK",
        "date": day,
        "cabin": None,
    }
    spec = next(s for s in CONTRACTS if s.name == "flight_book")
    schema = next(
        t["function"]["parameters"]
        for t in openai_tools(CONTRACTS)
        if t["function"]["name"] == "flight_book"
    )
    jsonschema.validate(strict, schema, format_checker=jsonschema.FormatChecker())
    catalog, limits = Catalog(CONTRACTS), Limits()

    def prepare(arguments: str) -> ValidCall:
        call = ToolCall(call_id="c", tool="flight_book", arguments=arguments)
        result = catalog.prepare(call, ALICE, limits)
        assert isinstance(result, ValidCall), result
        return result

    # Then mapped back, it is the call with the field omitted: the contract's default applies
    as_sent = json.dumps(strict)
    omitted = {k: v for k, v in strict.items() if v is not None}
    assert prepare(from_strict_arguments(spec, as_sent)).input == prepare(json.dumps(omitted)).input
    assert prepare(from_strict_arguments(spec, as_sent)).input["cabin"] == "economy"
    # And text that is not JSON is left for pre-validation to report
    assert from_strict_arguments(spec, "{not json") == "{not json"
