"""customer_lookup: read one customer of the user's tenant."""

from __future__ import annotations

from pydantic import Field

from tools.kit.contract import StrictInput, ToolOutput, ToolSpec

CustomerId = Field(
    pattern=r"^C-[0-9]{4,8}$",
    description="Customer id: 'C-' followed by 4 to 8 digits, e.g. 'C-1001'.",
)


class Input(StrictInput):
    """Which customer to read."""

    customer_id: str = CustomerId


class Output(ToolOutput):
    """The customer as stored."""

    customer_id: str
    name: str
    email: str
    tier: str


SPEC = ToolSpec(
    name="customer_lookup",
    summary=(
        "Read one customer's profile (name, email, loyalty tier) by customer id. "
        "Use it before changing a customer or booking for them."
    ),
    input=Input,
    output=Output,
    scopes=frozenset({"customers:read"}),
    db_privileges={"customers": frozenset({"SELECT"})},
    examples=[{"customer_id": "C-1001"}],
)
