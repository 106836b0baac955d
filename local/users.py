"""Local users for `--user`: in the cloud the principal comes from the authenticated request."""

from __future__ import annotations

from orchestrator.types import Principal

ALL_SCOPES = frozenset(
    {"customers:read", "customers:write", "flights:read", "bookings:write", "weather:read"}
)

LOCAL_USERS: dict[str, Principal] = {
    "alice": Principal(user_id="alice", tenant_id="acme", scopes=ALL_SCOPES),
    "bob": Principal(
        user_id="bob",
        tenant_id="acme",
        scopes=frozenset({"customers:read", "flights:read", "weather:read"}),
    ),
    "carol": Principal(user_id="carol", tenant_id="globex", scopes=ALL_SCOPES),
}
