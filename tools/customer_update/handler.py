"""customer_update Lambda: one UPDATE under the tenant's row-level security."""

from __future__ import annotations

from tools.customer_update.contract import SPEC, Input, Output
from tools.kit.envelope import ErrorKind, ToolError
from tools.kit.handler import ToolContext, tool_handler


def update(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Apply the given changes; not_found when the customer is not the tenant's."""
    ctx.cur.execute(
        "UPDATE customers SET email = coalesce(%s, email), tier = coalesce(%s, tier),"
        " updated_at = now() WHERE id = %s RETURNING id, name, email, tier",
        (data.email, data.tier, data.customer_id),
    )
    row = ctx.cur.fetchone()
    if row is None:
        return ToolError(kind=ErrorKind.NOT_FOUND, message=f"no customer {data.customer_id}")
    return Output(customer_id=row[0], name=row[1], email=row[2], tier=row[3])


handler = tool_handler(SPEC, update)
