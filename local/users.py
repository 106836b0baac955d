"""Local users for `--user`: in the cloud the principal comes from the authenticated request.

Their scopes follow from the contracts, so a new tool needs no edit here: alice (tenant acme)
and carol (tenant globex) hold every scope some tool requires; bob (acme) holds the scopes of
the read-only tools (`writes=False`), so he may look things up but never change anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.types import Principal
from tools.kit.contract import ToolSpec, read_only_scopes, required_scopes
from tools.registry import CONTRACTS


def local_users(specs: Iterable[ToolSpec] = CONTRACTS) -> dict[str, Principal]:
    """The local users, their scopes derived from these contracts."""
    specs = tuple(specs)
    every, reads = required_scopes(specs), read_only_scopes(specs)
    return {
        "alice": Principal(user_id="alice", tenant_id="acme", scopes=every),
        "bob": Principal(user_id="bob", tenant_id="acme", scopes=reads),
        "carol": Principal(user_id="carol", tenant_id="globex", scopes=every),
    }


LOCAL_USERS: dict[str, Principal] = local_users()
