from __future__ import annotations

import json

import pytest

from orchestrator.catalog import EXPORTS, Catalog, ValidCall, openai_tools
from orchestrator.limits import Limits, LoopGuard, call_key
from orchestrator.types import ErrorKind, Observation, ToolCall
from tests.fakes import ALICE
from tools.registry import CONTRACTS

CATALOG = Catalog(CONTRACTS)
LIMITS = Limits()


def prepare(tool: str, arguments: str) -> ValidCall | Observation:
    return CATALOG.prepare(ToolCall(call_id="c", tool=tool, arguments=arguments), ALICE, LIMITS)


def error_fields(result: ValidCall | Observation) -> list[str]:
    assert isinstance(result, Observation)
    assert result.error_kind is ErrorKind.VALIDATION
    return [e["field"] for e in result.details.get("errors", [])]


def test_arguments_that_are_not_unicode_are_rejected_not_a_crash() -> None:
    result = prepare("customer_lookup", '{"customer_id": "C-1001\ud800"}')
    assert isinstance(result, Observation)
    assert result.error_kind is ErrorKind.VALIDATION


def test_valid_call_is_normalized() -> None:
    result = prepare("customer_update", '{"customer_id": " C-1001 ", "tier": "gold"}')
    assert isinstance(result, ValidCall)
    assert result.input == {"customer_id": "C-1001", "email": None, "tier": "gold"}


def test_enum_error_names_the_allowed_values() -> None:
    result = prepare("customer_update", '{"customer_id": "C-1001", "tier": "diamond"}')
    assert error_fields(result) == ["tier"]
    assert isinstance(result, Observation) and result.message is not None
    for value in ("standard", "silver", "gold", "platinum"):
        assert value in result.message


@pytest.mark.parametrize(
    ("arguments", "fields"),
    [
        ('{"customer_id": "C-1001", "role": "admin"}', ["role"]),
        ('{"customer_id": 1001}', ["customer_id"]),
        ("{}", ["customer_id"]),
        ('{"customer_id": "1001; DROP TABLE customers"}', ["customer_id"]),
    ],
)
def test_lookup_rejects_bad_arguments(arguments: str, fields: list[str]) -> None:
    assert error_fields(prepare("customer_lookup", arguments)) == fields


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '"C-1001"'])
def test_non_object_arguments_are_rejected(arguments: str) -> None:
    assert error_fields(prepare("customer_lookup", arguments)) == []


def test_oversized_and_deeply_nested_arguments_are_rejected_before_parsing_models() -> None:
    big = json.dumps({"customer_id": "C-1001", "pad": "x" * 20_000})
    deep = '{"customer_id": "C-1001", "x": ' + "[" * 50 + "]" * 50 + "}"
    long_string = json.dumps({"customer_id": "C-1001", "x": "y" * 5_000})
    long_key = json.dumps({"k" * 5_000: 1})
    for arguments in (big, deep, long_string, long_key):
        result = prepare("customer_lookup", arguments)
        assert isinstance(result, Observation) and result.error_kind is ErrorKind.VALIDATION


def test_arguments_deeper_than_the_json_parser_can_go_are_rejected() -> None:
    arguments = "[" * 15_000 + "]" * 15_000
    result = CATALOG.prepare(
        ToolCall(call_id="c", tool="customer_lookup", arguments=arguments),
        ALICE,
        Limits(max_argument_bytes=100_000),
    )
    assert isinstance(result, Observation) and result.error_kind is ErrorKind.VALIDATION


def test_past_date_is_rejected() -> None:
    arguments = (
        '{"customer_id": "C-1001", "origin": "CDG", "destination": "JFK", "date": "2001-01-01"}'
    )
    assert error_fields(prepare("flight_book", arguments)) == ["date"]


def test_lookalike_tool_name_is_unknown() -> None:
    result = prepare("customer_looku\u0440", '{"customer_id": "C-1001"}')  # Cyrillic er
    assert isinstance(result, Observation) and "available" in result.details


def test_every_export_covers_every_tool() -> None:
    for export in EXPORTS.values():
        assert len(export(CONTRACTS)) == len(CONTRACTS)


def test_openai_strict_schema_requires_every_property() -> None:
    for tool in openai_tools(CONTRACTS):
        params = tool["function"]["parameters"]
        assert params["additionalProperties"] is False
        assert sorted(params["required"]) == sorted(params["properties"])


def test_call_keys_ignore_order_and_spacing() -> None:
    assert call_key("t", '{"b": 1, "a": [1, 2]}') == call_key("t", '{"a":[1,2],"b":1}')
    assert call_key("t", " not json ") == call_key("t", "not json")
    assert call_key("t", "{}") != call_key("u", "{}")


def test_loop_guard_counts_incrementally() -> None:
    guard = LoopGuard()
    limits = Limits(max_repeated_calls=3, max_same_error=2)
    key = call_key("t", '{"a":1}')
    for _ in range(2):
        assert guard.repeated_call(key, "t", limits) is None
        guard = guard.after(key, "not_found:x")
    assert guard.repeated_call(call_key("t", '{"a": 1}'), "t", limits) is not None
    assert guard.repeated_call(call_key("t", '{"a": 2}'), "t", limits) is None
    assert guard.repeated_error(limits) is not None
    assert guard.after(call_key("t", "{}"), None).repeated_error(limits) is None


@pytest.mark.parametrize(
    ("arguments", "rejected"),
    [
        ('{"customer_id": "C-1001", "x": [1]}', False),
        ('{"customer_id": "C-1001", "x": [[1]]}', True),
        ('{"customer_id": "C-1001", "x": [{"y": 1}]}', True),
    ],
)
def test_depth_limit_is_exact_at_its_boundary(arguments: str, rejected: bool) -> None:
    limits = Limits(max_argument_depth=3)
    result = CATALOG.prepare(
        ToolCall(call_id="c", tool="customer_lookup", arguments=arguments), ALICE, limits
    )
    depth_error = (
        isinstance(result, Observation) and result.details.get("limit") == "max_argument_depth"
    )
    assert depth_error is rejected
