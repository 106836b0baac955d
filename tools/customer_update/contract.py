"""customer_update: change a customer's email or loyalty tier."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec

Tier = Literal["standard", "silver", "gold", "platinum"]


class Input(StrictInput):
    """The customer and the fields to change; at least one of email or tier."""

    customer_id: str = Field(
        pattern=r"^C-[0-9]{4,8}$",
        description="Customer id: 'C-' followed by 4 to 8 digits, e.g. 'C-1001'.",
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
        description="New email address, e.g. 'ada@example.com'.",
    )
    tier: Tier | None = Field(
        default=None,
        description="New loyalty tier: one of 'standard', 'silver', 'gold', 'platinum'.",
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.email is None and self.tier is None:
            raise ValueError("give at least one of 'email' or 'tier' to change")
        return self


class Output(ToolOutput):
    """The customer after the change."""

    customer_id: str
    name: str
    email: str
    tier: Tier


SPEC = ToolSpec(
    name="customer_update",
    summary="Change a customer's email and/or loyalty tier. Only the given fields change.",
    input=Input,
    output=Output,
    scopes=frozenset({"customers:write"}),
    db_privileges={"customers": frozenset({"SELECT", "UPDATE"})},
    writes=True,
    examples=[{"customer_id": "C-1001", "tier": "gold"}],
)
