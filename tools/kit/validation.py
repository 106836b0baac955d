"""Turn pydantic validation errors into a message a model can act on.

Shared by the orchestrator (pre-validation before any invocation) and by every tool
(validation again inside the handler), so the model sees one wording for one mistake.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

_MAX_SHOWN = 80


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _field_hint(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    if not loc or not isinstance(loc[0], str):
        return None
    field = model.model_fields.get(loc[0])
    if field is None:
        return f"allowed fields: {', '.join(sorted(model.model_fields))}"
    return field.description


def describe_errors(
    model: type[BaseModel], exc: ValidationError
) -> tuple[str, list[dict[str, Any]]]:
    """Return one readable message and structured details (field, problem, got, expected)."""
    details: list[dict[str, Any]] = []
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        field = ".".join(str(part) for part in loc) or "(arguments)"
        item: dict[str, Any] = {"field": field, "problem": err["msg"], "type": err["type"]}
        line = f"{field}: {err['msg']}"
        if err["type"] not in {"missing", "json_invalid"}:
            item["got"] = err.get("input")
            line += f" (got {_shown(err.get('input'))})"
        hint = _field_hint(model, loc)
        if hint:
            item["expected"] = hint
            line += f"; expected: {hint}"
        details.append(item)
        lines.append(line)
    return "invalid arguments: " + " | ".join(lines), details
