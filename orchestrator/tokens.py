"""Verify a Cognito ID token (RS256, the user pool's published keys) and read its claims."""

from __future__ import annotations

from typing import Any

import jwt


class CognitoVerifier:
    """Checks signature, issuer, audience, expiry and `token_use` of a user pool ID token."""

    def __init__(
        self, region: str, user_pool_id: str, client_id: str, jwks_url: str | None = None
    ) -> None:
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self.client_id = client_id
        # PyJWKClient caches the keys for the life of the (warm) function.
        self.keys = jwt.PyJWKClient(
            jwks_url or f"{self.issuer}/.well-known/jwks.json", cache_keys=True
        )

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid ID token, or None."""
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self.client_id, issuer=self.issuer
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            return None
        return claims if claims.get("token_use") == "id" else None
