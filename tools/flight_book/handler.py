"""flight_book Lambda: check the airports, find the flight, insert the booking."""

from __future__ import annotations

from tools.flight_book.contract import SPEC, Input, Output
from tools.kit.db import DatabaseError, sqlstate
from tools.kit.envelope import ErrorKind, ToolError
from tools.kit.handler import ToolContext, tool_handler
from tools.kit.reference import unknown_references

FOREIGN_KEY_VIOLATION = "23503"


def book(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Book the route's flight on the given day; every failure says what is expected."""
    cur = ctx.cur
    unknown = unknown_references(
        cur,
        "airports",
        "code",
        {"origin": data.origin, "destination": data.destination},
        "IATA airport code",
    )
    if unknown is not None:
        return unknown
    cur.execute(
        "SELECT id, flight_no, departs_at FROM flights WHERE origin = %s AND destination = %s"
        " AND departs_at >= %s::date AND departs_at < %s::date + 1 ORDER BY departs_at LIMIT 1",
        (data.origin, data.destination, data.date, data.date),
    )
    flight = cur.fetchone()
    if flight is None:
        return ToolError(
            kind=ErrorKind.NOT_FOUND,
            message=f"no flight from {data.origin} to {data.destination} on {data.date}",
        )
    try:
        cur.execute(
            "INSERT INTO bookings (customer_id, flight_id, cabin) VALUES (%s, %s, %s) RETURNING id",
            (data.customer_id, flight[0], data.cabin),
        )
    except DatabaseError as exc:
        if sqlstate(exc) != FOREIGN_KEY_VIOLATION:
            raise
        return ToolError(kind=ErrorKind.NOT_FOUND, message=f"no customer {data.customer_id}")
    booking = cur.fetchone()
    assert booking is not None  # INSERT ... RETURNING always returns the row
    return Output(
        booking_id=str(booking[0]),
        customer_id=data.customer_id,
        flight_no=flight[1],
        origin=data.origin,
        destination=data.destination,
        departs_at=flight[2],
        cabin=data.cabin,
    )


handler = tool_handler(SPEC, book)
