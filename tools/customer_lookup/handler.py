"""customer_lookup Lambda: one SELECT under the tenant's row-level security."""

from __future__ import annotations

from tools.customer_lookup.contract import SPEC, Input, Output
from tools.kit.envelope import ErrorKind, ToolError
from tools.kit.handler import ToolContext, tool_handler


def lookup(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Return the customer, or not_found (another tenant's customer is invisible)."""
    ctx.cur.execute(
        "SELECT id, name, email, tier FROM customers WHERE id = %s", (data.customer_id,)
    )
    row = ctx.cur.fetchone()
    if row is None:
        return ToolError(kind=ErrorKind.NOT_FOUND, message=f"no customer {data.customer_id}")
    return Output(customer_id=row[0], name=row[1], email=row[2], tier=row[3])


handler = tool_handler(SPEC, lookup)
