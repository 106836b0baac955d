from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from tools.kit.contract import (
    EXAMPLE_TODAY,
    IDENTITY_FIELDS,
    StrictInput,
    ToolOutput,
    ToolSpec,
    read_only_scopes,
    required_scopes,
    today,
)
from tools.registry import CONTRACTS


class Soon(StrictInput):
    """A day within a week, and a count."""

    day: dt.date = Field(description="A day, today or up to 7 days ahead.")
    count: int = Field(default=1, ge=1, le=3, description="How many, 1 to 3.")

    @field_validator("day")
    @classmethod
    def _within_a_week(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        first = today(info)
        if not first <= value <= first + dt.timedelta(days=7):
            raise ValueError("day must be within the next 7 days")
        return value


def soon_spec(*examples: dict[str, object], **fields: object) -> ToolSpec:
    given: dict[str, object] = {
        "name": "slot_find",
        "summary": "Find a slot.",
        "input": Soon,
        "output": ToolOutput,
        "scopes": frozenset({"slots:read"}),
        "examples": list(examples),
        **fields,
    }
    return ToolSpec(**given)  # type: ignore[arg-type]  # field types vary per test


def test_no_contract_input_carries_identity() -> None:
    for spec in CONTRACTS:
        assert not IDENTITY_FIELDS & set(spec.input.model_fields), spec.name
        assert spec.input.model_config.get("extra") == "forbid", spec.name


def test_a_contract_with_an_identity_field_is_refused() -> None:
    class Smuggling(StrictInput):
        tenant_id: str

    with pytest.raises(ValueError, match="identity"):
        ToolSpec(
            name="thing_get",
            summary="d",
            input=Smuggling,
            output=ToolOutput,
            scopes=frozenset(),
        )


def test_write_privileges_require_writes_flag() -> None:
    class Empty(StrictInput):
        pass

    with pytest.raises(ValueError, match="writes"):
        ToolSpec(
            name="thing_set",
            summary="d",
            input=Empty,
            output=ToolOutput,
            scopes=frozenset(),
            db_privileges={"t": frozenset({"UPDATE"})},
        )


@pytest.mark.parametrize("name", ["Thing", "thing", "thing-get", "thing_Get"])
def test_tool_names_are_noun_verb_snake_case(name: str) -> None:
    class Empty(StrictInput):
        pass

    with pytest.raises(ValueError, match="snake_case"):
        ToolSpec(name=name, summary="d", input=Empty, output=ToolOutput, scopes=frozenset())


def test_every_tool_declares_scopes_and_a_description_with_an_example() -> None:
    for spec in CONTRACTS:
        assert spec.scopes, spec.name
        assert "Example" in spec.description, spec.name
        for field in spec.input.model_fields.values():
            assert field.description, spec.name


def test_every_example_of_every_tool_is_a_valid_call_today() -> None:
    # The orchestrator validates without context: the real day. Moved examples must pass it.
    for spec in CONTRACTS:
        assert spec.example_inputs, spec.name
        for arguments in spec.example_arguments(as_of=dt.datetime.now(dt.UTC).date()):
            spec.input.model_validate(arguments)


def test_an_invalid_example_is_refused_when_the_contract_is_defined() -> None:
    with pytest.raises(ValueError, match="example 1"):
        soon_spec({"day": "2030-05-12"}, {"day": "2030-05-12", "count": 9})
    with pytest.raises(ValueError, match="example 0"):
        soon_spec({"day": "2030-05-12", "tenant": "globex"})
    # Valid as of the example day only: 30 days after it is out of range.
    with pytest.raises(ValueError, match="example 0"):
        soon_spec({"day": (EXAMPLE_TODAY + dt.timedelta(days=30)).isoformat()})


def test_examples_are_typed_inputs_and_json_arguments_in_the_description() -> None:
    spec = soon_spec({"day": "2030-05-12"}, {"day": "2030-05-13", "count": 2})

    assert all(isinstance(e, Soon) for e in spec.example_inputs)
    assert spec.example_arguments() == [{"day": "2030-05-12"}, {"day": "2030-05-13", "count": 2}]
    assert spec.description.startswith("Find a slot. Examples (")
    for arguments in spec.example_arguments():
        assert json.dumps(arguments) in spec.description


def test_moved_examples_keep_their_distance_from_today() -> None:
    spec = soon_spec({"day": "2030-05-12"})
    day = dt.date(2031, 1, 30)

    assert spec.example_arguments(as_of=day) == [{"day": "2031-02-01"}]
    # As of the real day, the example itself (2030) would not be a valid call from a model.
    with pytest.raises(ValidationError):
        Soon.model_validate(spec.example_arguments()[0])


def test_an_upstream_is_a_plain_name() -> None:
    assert soon_spec({"day": "2030-05-12"}, upstream="calendar").upstream == "calendar"
    with pytest.raises(ValueError, match="upstream"):
        soon_spec({"day": "2030-05-12"}, upstream="https://calendar.example")


def test_only_a_tool_without_database_or_upstream_needs_no_network() -> None:
    day = {"day": "2030-05-12"}
    assert soon_spec(day).needs_network is False
    assert soon_spec(day, upstream="calendar").needs_network is True
    assert soon_spec(day, db_privileges={"slots": frozenset({"SELECT"})}).needs_network is True
    assert soon_spec(day, writes=True).needs_network is True
    offline = {spec.name for spec in CONTRACTS if not spec.needs_network}
    assert "python_exec" in offline
    assert "weather_lookup" not in offline


def test_scopes_derive_from_the_contracts() -> None:
    reader = soon_spec({"day": "2030-05-12"})
    writer = soon_spec(
        {"day": "2030-05-12"},
        name="slot_book",
        scopes=frozenset({"slots:read", "slots:write"}),
        writes=True,
    )

    assert required_scopes([reader, writer]) == {"slots:read", "slots:write"}
    assert read_only_scopes([reader, writer]) == {"slots:read"}
    # A writing tool that only needs read scopes would let a reader write: refused.
    sneaky = soon_spec({"day": "2030-05-12"}, name="slot_cancel", writes=True)
    with pytest.raises(ValueError, match="slot_cancel"):
        read_only_scopes([reader, sneaky])
