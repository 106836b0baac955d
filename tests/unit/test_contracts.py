from __future__ import annotations

import pytest

from tools.kit.contract import IDENTITY_FIELDS, StrictInput, ToolOutput, ToolSpec
from tools.registry import CONTRACTS


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
            description="d",
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
            description="d",
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
        ToolSpec(name=name, description="d", input=Empty, output=ToolOutput, scopes=frozenset())


def test_every_tool_declares_scopes_and_a_description_with_an_example() -> None:
    for spec in CONTRACTS:
        assert spec.scopes, spec.name
        assert "Example" in spec.description, spec.name
        for field in spec.input.model_fields.values():
            assert field.description, spec.name
