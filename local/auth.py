"""Local bearer tokens for `lockgate serve`: what Cognito and the API Gateway authorizer do in AWS.

Tokens are HS256, signed with a key kept `0600` beside the local database, and carry the same
claims a Cognito ID token does, so the API handler reads them exactly as in the cloud.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt

from local.users import LOCAL_USERS
from orchestrator.tokens import MAX_TOKEN_LIFETIME_SECONDS, REQUIRED_CLAIMS, lifetime_ok
from orchestrator.types import Principal

ISSUER = "lockgate-local"
TOKEN_HOURS = 12


def signing_key(home: Path) -> bytes:
    """The local token key (created once, 0600, beside the local database)."""
    path = home / "jwt.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def claims_for(principal: Principal) -> dict[str, Any]:
    """The claims a Cognito ID token carries for this user."""
    return {
        "sub": principal.user_id,
        "custom:tenant_id": principal.tenant_id,
        "cognito:groups": sorted(principal.scopes),
    }


def issue_token(home: Path, user: str) -> str:
    """A locally signed token for a local user."""
    principal = LOCAL_USERS[user]
    now = int(time.time())
    payload = {**claims_for(principal), "iss": ISSUER, "iat": now, "exp": now + TOKEN_HOURS * 3600}
    return jwt.encode(payload, signing_key(home), algorithm="HS256")


def verify_token(
    home: Path, header: str | None, *, max_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS
) -> dict[str, Any] | None:
    """Claims of a valid `Bearer` token (the scheme in any case, RFC 7235), or None. The token
    must carry `exp` and `iat`, and live no longer than `max_lifetime_seconds`."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            signing_key(home),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError:
        return None
    return claims if lifetime_ok(claims, max_lifetime_seconds) else None
