"""python_exec: run a short Python program over data the agent already has."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    JsonValue,
    WithJsonSchema,
    field_serializer,
    field_validator,
)

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec

MAX_CODE_CHARS = 10_000
MAX_INPUTS_CHARS = 256_000
MODULES_NOTE = (
    "math, statistics, json, datetime, decimal, fractions, itertools, functools, collections, "
    "re, string, random"
)


def _json_text(value: Any) -> Any:
    """`inputs` as JSON text (what a model sends) or as a JSON object (what code sends)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"inputs must be a JSON object: {exc}") from exc
    return value


Inputs = Annotated[
    dict[str, JsonValue] | None,
    BeforeValidator(_json_text),
    # Shown to models as text: an open-ended object cannot be expressed in strict decoding.
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": None,
            "description": (
                "Optional data for the program, as JSON object text; inside the program it is "
                'the dict `inputs`. E.g. \'{"rows": [{"amount": 12.5}]}\'.'
            ),
        }
    ),
]


class Input(StrictInput):
    """A program and the data it works on."""

    code: str = Field(
        min_length=1,
        max_length=MAX_CODE_CHARS,
        description=(
            "Python 3 source. Set a variable named `result` to the answer, or end with an "
            "expression; print() output is returned too. Import only: " + MODULES_NOTE + "."
        ),
    )
    inputs: Inputs = Field(
        default=None,
        description=(
            "Optional data for the program, as JSON object text; inside the program it is the "
            'dict `inputs`. E.g. \'{"rows": [{"amount": 12.5}]}\'.'
        ),
    )

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_INPUTS_CHARS:
            raise ValueError(f"inputs must be at most {MAX_INPUTS_CHARS} characters as JSON")
        return value

    @field_serializer("inputs", when_used="json")
    def _as_text(self, value: dict[str, Any] | None) -> str | None:
        # As JSON, `inputs` is text again: the shape its schema shows a model.
        return None if value is None else json.dumps(value)


class Timings(ToolOutput):
    """Where the time went, in milliseconds."""

    check_ms: float
    run_ms: float
    total_ms: float


class Output(ToolOutput):
    """What the program computed."""

    result: JsonValue = Field(description="The value of `result`, else of the last expression.")
    stdout: str
    stdout_truncated: bool
    timings: Timings


SPEC = ToolSpec(
    name="python_exec",
    summary=(
        "Compute with a short Python program over data you already have: statistics, sums and "
        "averages over rows, date arithmetic, grouping, parsing text. The program runs isolated: "
        "no files, network, other tools or credentials; only these modules can be imported: "
        + MODULES_NOTE
        + ". Put the data in the program or in `inputs`."
    ),
    input=Input,
    output=Output,
    scopes=frozenset({"python:run"}),
    examples=[
        {
            "code": (
                "import statistics\n"
                "amounts = [row['amount'] for row in inputs['rows']]\n"
                "result = {'total': sum(amounts), 'median': statistics.median(amounts)}"
            ),
            "inputs": '{"rows": [{"amount": 12.5}, {"amount": 30}, {"amount": 7}]}',
        }
    ],
)
