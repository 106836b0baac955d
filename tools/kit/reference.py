"""Check that values the model gave name rows that exist, and say which ones would do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tools.kit.envelope import ErrorKind, ToolError

if TYPE_CHECKING:
    import psycopg

SHOWN = 20


def unknown_references(
    cur: psycopg.Cursor[Any], table: str, column: str, fields: Mapping[str, str], noun: str
) -> ToolError | None:
    """A validation error naming each field whose value is not in `table.column`, with up to
    twenty values that exist; None when every value exists. `table` and `column` are code."""
    from psycopg import sql  # loaded with the connection, not at cold start

    cur.execute(
        sql.SQL("SELECT {col} FROM {tab} WHERE {col} = ANY(%s)").format(
            col=sql.Identifier(column), tab=sql.Identifier(table)
        ),
        (list(fields.values()),),
    )
    known = {row[0] for row in cur.fetchall()}
    unknown = {field: value for field, value in fields.items() if value not in known}
    if not unknown:
        return None
    cur.execute(
        sql.SQL("SELECT {col} FROM {tab} ORDER BY 1 LIMIT %s").format(
            col=sql.Identifier(column), tab=sql.Identifier(table)
        ),
        (SHOWN,),
    )
    sample = [row[0] for row in cur.fetchall()]
    listed = ", ".join(f"{field}={value!r}" for field, value in unknown.items())
    return ToolError(
        kind=ErrorKind.VALIDATION,
        message=f"unknown {noun} {listed}: use one of {', '.join(sample)}",
        details={"unknown": unknown, "known": sample},
    )
