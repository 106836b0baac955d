"""Verify a Cognito ID token (RS256, the user pool's published keys) and read its claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

# Cognito issues ID tokens valid for 5 minutes to 1 day: a longer-lived token is not one of its.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
REQUIRED_CLAIMS = ["exp", "iat"]


def lifetime_ok(claims: Mapping[str, Any], max_lifetime_seconds: int) -> bool:
    """True when the token was issued no longer than `max_lifetime_seconds` before it expires.

    Signature, `exp` and `iat` themselves are checked by `jwt.decode`; a token without an expiry
    or with an unbounded one is as good as a password that never changes."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        return False
    return 0 < exp - iat <= max_lifetime_seconds


class CognitoVerifier:
    """Checks signature, issuer, audience, expiry, issue time, lifetime and `token_use` of a user
    pool ID token."""

    def __init__(
        self,
        region: str,
        user_pool_id: str,
        client_id: str,
        jwks_url: str | None = None,
        *,
        max_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self.client_id = client_id
        self.max_lifetime_seconds = max_lifetime_seconds
        # PyJWKClient caches the keys for the life of the (warm) function.
        self.keys = jwt.PyJWKClient(
            jwks_url or f"{self.issuer}/.well-known/jwks.json", cache_keys=True
        )

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid ID token, or None."""
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            return None
        if claims.get("token_use") != "id" or not lifetime_ok(claims, self.max_lifetime_seconds):
            return None
        return claims
