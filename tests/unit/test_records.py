from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.records import as_data, codec
from orchestrator.types import ModelTurn, Step, ToolCall, Usage


def test_stored_records_are_validated_where_they_come_back() -> None:
    step = Step(
        index=0,
        turn=ModelTurn(
            decision=ToolCall(call_id="c", tool="customer_lookup", arguments="{}"),
            usage=Usage(input_tokens=10),
        ),
    )
    data = as_data(step)
    assert codec(Step).validate_python(data) == step

    with pytest.raises(ValidationError):
        codec(Step).validate_python({**data, "index": 0, "planted": True})
    with pytest.raises(ValidationError):
        codec(Usage).validate_python({"input_tokens": -1})
    with pytest.raises(ValidationError):  # the decision's kind picks its type
        codec(Step).validate_python({**data, "turn": {"decision": {"kind": "shell", "cmd": "x"}}})


def test_records_are_not_hashable() -> None:
    # mypy sees records as frozen and would allow hashing them: this is the run-time truth.
    with pytest.raises(TypeError):
        hash(Usage())
