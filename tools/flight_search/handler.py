"""flight_search Lambda: one SELECT over the shared flight schedule."""

from __future__ import annotations

from tools.flight_search.contract import SPEC, Flight, Input, Output
from tools.kit.envelope import ToolError
from tools.kit.handler import ToolContext, tool_handler
from tools.kit.reference import unknown_references


def search(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Departures of the route from `date_from` for `days` days."""
    unknown = unknown_references(
        ctx.cur,
        "airports",
        "code",
        {"origin": data.origin, "destination": data.destination},
        "IATA airport code",
    )
    if unknown is not None:
        return unknown
    ctx.cur.execute(
        "SELECT flight_no, origin, destination, departs_at FROM flights"
        " WHERE origin = %s AND destination = %s"
        " AND departs_at >= %s::date AND departs_at < %s::date + %s::int ORDER BY departs_at",
        (data.origin, data.destination, data.date_from, data.date_from, data.days),
    )
    return Output(
        flights=[
            Flight(flight_no=r[0], origin=r[1], destination=r[2], departs_at=r[3])
            for r in ctx.cur.fetchall()
        ]
    )


handler = tool_handler(SPEC, search)
