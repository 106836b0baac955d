"""Check that values the model gave name rows that exist, and say which ones would do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tools.kit.envelope import ErrorKind, ToolError

if TYPE_CHECKING:
    from tools.kit.db import Cursor

SHOWN = 20
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def unknown_references(
    cur: Cursor, table: str, column: str, fields: Mapping[str, str], noun: str
) -> ToolError | None:
    """A validation error naming each field whose value is not in `table.column`, with up to
    twenty values that exist; None when every value exists. `table` and `column` are code."""
    if not (_IDENTIFIER.match(table) and _IDENTIFIER.match(column)):
        raise ValueError(f"not an identifier: {table}.{column}")
    cur.execute(
        f'SELECT "{column}" FROM "{table}" WHERE "{column}" = ANY(%s)',  # noqa: S608  # identifiers checked above
        (list(fields.values()),),
    )
    known = {row[0] for row in cur.fetchall()}
    unknown = {field: value for field, value in fields.items() if value not in known}
    if not unknown:
        return None
    cur.execute(f'SELECT "{column}" FROM "{table}" ORDER BY 1 LIMIT %s', (SHOWN,))  # noqa: S608  # identifiers checked above
    sample = [row[0] for row in cur.fetchall()]
    listed = ", ".join(f"{field}={value!r}" for field, value in unknown.items())
    return ToolError(
        kind=ErrorKind.VALIDATION,
        message=f"unknown {noun} {listed}: use one of {', '.join(sample)}",
        details={"unknown": unknown, "known": sample},
    )
