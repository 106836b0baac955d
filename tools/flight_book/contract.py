"""flight_book: book a seat for a customer on the scheduled flight of a route and day."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec, today

Cabin = Literal["economy", "premium_economy", "business", "first"]
_IATA = r"^[A-Z]{3}$"


class Input(StrictInput):
    """Who flies, from where to where, on which day, in which cabin."""

    customer_id: str = Field(
        pattern=r"^C-[0-9]{4,8}$",
        description="Customer id: 'C-' followed by 4 to 8 digits, e.g. 'C-1001'.",
    )
    origin: str = Field(
        pattern=_IATA,
        description="IATA code of the departure airport, three capital letters, e.g. 'CDG' "
        "(not a city name).",
    )
    destination: str = Field(
        pattern=_IATA,
        description="IATA code of the arrival airport, three capital letters, e.g. 'JFK' "
        "(not a city name).",
    )
    date: dt.date = Field(
        description="Departure day in ISO format, in the future, e.g. '2030-05-17'."
    )
    cabin: Cabin = Field(
        default="economy",
        description="Cabin class: one of 'economy', 'premium_economy', 'business', 'first'.",
    )

    @field_validator("date")
    @classmethod
    def _in_future(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        if value <= today(info):
            raise ValueError("date must be in the future")
        return value


class Output(ToolOutput):
    """The confirmed booking."""

    booking_id: str
    customer_id: str
    flight_no: str
    origin: str
    destination: str
    departs_at: dt.datetime
    cabin: Cabin


SPEC = ToolSpec(
    name="flight_book",
    summary=(
        "Book a seat for a customer on the flight of a route and day. Airports are IATA codes, "
        "not city names."
    ),
    input=Input,
    output=Output,
    scopes=frozenset({"bookings:write"}),
    db_privileges={
        "airports": frozenset({"SELECT"}),
        "flights": frozenset({"SELECT"}),
        "bookings": frozenset({"SELECT", "INSERT"}),
    },
    writes=True,
    examples=[
        {
            "customer_id": "C-1001",
            "origin": "CDG",
            "destination": "JFK",
            "date": "2030-05-17",
            "cabin": "business",
        }
    ],
)
