"""flight_search: the scheduled flights of a route over a range of days."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, ValidationInfo, field_validator

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec, today


class Input(StrictInput):
    """Route and days to search."""

    origin: str = Field(
        pattern=r"^[A-Z]{3}$",
        description="IATA code of the departure airport, three capital letters, e.g. 'CDG' "
        "(not a city name).",
    )
    destination: str = Field(
        pattern=r"^[A-Z]{3}$",
        description="IATA code of the arrival airport, three capital letters, e.g. 'JFK' "
        "(not a city name).",
    )
    date_from: dt.date = Field(
        description="First day to search, today or later, e.g. '2030-05-17'."
    )
    days: int = Field(default=7, ge=1, le=31, description="How many days to search, 1 to 31.")

    @field_validator("date_from")
    @classmethod
    def _not_past(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        if value < today(info):
            raise ValueError("date_from must be today or later")
        return value


class Flight(ToolOutput):
    """One scheduled departure."""

    flight_no: str
    origin: str
    destination: str
    departs_at: dt.datetime


class Output(ToolOutput):
    """The departures found, earliest first."""

    flights: list[Flight]


SPEC = ToolSpec(
    name="flight_search",
    summary=(
        "List the scheduled flights of a route over a range of days, earliest first. Use it to "
        "find a date before booking."
    ),
    input=Input,
    output=Output,
    scopes=frozenset({"flights:read"}),
    db_privileges={"airports": frozenset({"SELECT"}), "flights": frozenset({"SELECT"})},
    examples=[{"origin": "LHR", "destination": "SFO", "date_from": "2030-05-17", "days": 7}],
)
