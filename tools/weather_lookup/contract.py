"""weather_lookup: the forecast at an airport on a day, from an external weather API."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import Field, ValidationInfo, model_validator

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec, today

FORECAST_DAYS = 14


class Input(StrictInput):
    """Where and when."""

    airport: str = Field(
        pattern=r"^[A-Z]{3}$",
        description="IATA code of the airport, three capital letters, e.g. 'CDG' (not a city name).",
    )
    date: dt.date = Field(
        description=f"Day of the forecast in ISO format, today or up to {FORECAST_DAYS} days ahead, "
        "e.g. '2030-05-17'."
    )

    @model_validator(mode="after")
    def _in_forecast_range(self, info: ValidationInfo) -> Self:
        first = today(info)
        if not first <= self.date <= first + dt.timedelta(days=FORECAST_DAYS):
            raise ValueError(f"date must be between today and {FORECAST_DAYS} days ahead")
        return self


class Output(ToolOutput):
    """The forecast."""

    airport: str
    date: dt.date
    temperature_c: float
    conditions: str


SPEC = ToolSpec(
    name="weather_lookup",
    summary=(
        "Get the weather forecast (temperature in Celsius and conditions) at an airport on a day "
        "within the next two weeks."
    ),
    input=Input,
    output=Output,
    scopes=frozenset({"weather:read"}),
    examples=[{"airport": "JFK", "date": "2030-05-17"}],
    upstream="weather",
)
