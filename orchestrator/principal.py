"""The principal from an authenticated request's claims: never from model output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.types import Principal

TENANT_CLAIM = "custom:tenant_id"
SCOPES_CLAIM = "cognito:groups"


def principal_from_claims(
    claims: Mapping[str, Any] | None, *, scopes_claim: str = SCOPES_CLAIM
) -> Principal | None:
    """Cognito/JWT claims → principal; None if the identity is incomplete.

    Scopes come only from `scopes_claim` (by default `cognito:groups`: a group named like a
    scope, e.g. `customers:read`, grants it). No other claim grants anything: a token minted
    for another purpose (an OAuth `scope`, say) must not widen what the user may do.
    """
    if not claims:
        return None
    user_id = str(claims.get("sub") or "")
    tenant_id = str(claims.get(TENANT_CLAIM) or "")
    if not user_id or not tenant_id:
        return None
    groups = claims.get(scopes_claim) or []
    if isinstance(groups, str):  # API Gateway passes lists from Cognito as "[a b]" or "a,b"
        groups = groups.strip("[]").replace(",", " ").split()
    scopes = {str(g) for g in groups}
    return Principal(user_id=user_id, tenant_id=tenant_id, scopes=frozenset(s for s in scopes if s))
