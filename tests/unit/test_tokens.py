"""Both token verifiers with real signed tokens: the Cognito one (RS256, keys from a JWKS
endpoint on 127.0.0.1) and the local one (HS256, `lockgate serve`). A token must expire, say
when it was issued, and live no longer than a day; only `cognito:groups` grants scopes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.auth import ISSUER as LOCAL_ISSUER
from local.auth import claims_for, issue_token, signing_key, verify_token
from local.users import LOCAL_USERS
from orchestrator.principal import principal_from_claims
from orchestrator.tokens import CognitoVerifier
from tests.jwks import jwks_server

REGION, POOL, CLIENT = "eu-west-1", "eu-west-1_TOKENS", "client-tokens"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
HOUR = 3600


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    with jwks_server(rsa_key) as url:
        yield url


def id_token(key: rsa.RSAPrivateKey, *, drop: tuple[str, ...] = (), **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "custom:tenant_id": "acme",
        "cognito:groups": ["customers:read"],
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "iat": now,
        "exp": now + HOUR,
        **overrides,
    }
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_cognito_verifier_accepts_a_bounded_id_token(
    rsa_key: rsa.RSAPrivateKey, jwks_url: str
) -> None:
    claims = CognitoVerifier(REGION, POOL, CLIENT, jwks_url).claims(id_token(rsa_key))
    assert claims is not None and claims["sub"] == "alice"


@pytest.mark.parametrize(
    ("drop", "overrides"),
    [
        (("exp",), {}),  # never expires
        (("iat",), {}),  # no issue time: its lifetime cannot be bounded
        ((), {"exp": int(time.time()) + 400 * 24 * HOUR}),  # valid for more than a year
        ((), {"iat": int(time.time()) - 2 * HOUR, "exp": int(time.time()) + 23 * HOUR}),  # 25 h
        ((), {"iat": int(time.time()) + HOUR, "exp": int(time.time()) + 2 * HOUR}),  # future iat
        ((), {"iat": int(time.time()), "exp": int(time.time()) - 60}),  # expires before issued
    ],
    ids=["no-exp", "no-iat", "a-year", "25-hours", "issued-in-future", "expired"],
)
def test_cognito_verifier_rejects_unbounded_tokens(
    rsa_key: rsa.RSAPrivateKey, jwks_url: str, drop: tuple[str, ...], overrides: dict[str, Any]
) -> None:
    verifier = CognitoVerifier(REGION, POOL, CLIENT, jwks_url)
    assert verifier.claims(id_token(rsa_key, drop=drop, **overrides)) is None


def test_cognito_verifier_lifetime_is_configurable(
    rsa_key: rsa.RSAPrivateKey, jwks_url: str
) -> None:
    # Given a deployment that accepts tokens of at most 15 minutes
    verifier = CognitoVerifier(REGION, POOL, CLIENT, jwks_url, max_lifetime_seconds=900)
    now = int(time.time())
    # Then a one-hour token is refused and a ten-minute one accepted
    assert verifier.claims(id_token(rsa_key, iat=now, exp=now + HOUR)) is None
    assert verifier.claims(id_token(rsa_key, iat=now, exp=now + 600)) is not None


def test_scopes_come_only_from_cognito_groups() -> None:
    claims = {
        "sub": "bob",
        "custom:tenant_id": "acme",
        "cognito:groups": ["customers:read"],
        "scope": "bookings:write customers:write",
    }
    principal = principal_from_claims(claims)
    assert principal is not None
    assert principal.scopes == frozenset({"customers:read"})
    # API Gateway flattens the groups list into a string: still only the groups count.
    flattened = principal_from_claims({**claims, "cognito:groups": "[customers:read]"})
    assert flattened is not None and flattened.scopes == frozenset({"customers:read"})
    only_scope = principal_from_claims({k: v for k, v in claims.items() if k != "cognito:groups"})
    assert only_scope is not None and only_scope.scopes == frozenset()


def local_token(home: Path, *, drop: tuple[str, ...] = (), **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        **claims_for(LOCAL_USERS["alice"]),
        "iss": LOCAL_ISSUER,
        "iat": now,
        "exp": now + HOUR,
        **overrides,
    }
    for name in drop:
        claims.pop(name)
    return jwt.encode(claims, signing_key(home), algorithm="HS256")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_local_verifier_accepts_the_scheme_in_any_case(tmp_path: Path, scheme: str) -> None:
    claims = verify_token(tmp_path, f"{scheme} {issue_token(tmp_path, 'alice')}")
    assert claims is not None and claims["sub"] == LOCAL_USERS["alice"].user_id


def test_local_verifier_rejects_unbounded_and_malformed_tokens(tmp_path: Path) -> None:
    now = int(time.time())
    for header in (
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {issue_token(tmp_path, 'alice')}",
        f"Bearer {local_token(tmp_path, drop=('exp',))}",
        f"Bearer {local_token(tmp_path, drop=('iat',))}",
        f"Bearer {local_token(tmp_path, exp=now + 30 * 24 * HOUR)}",
        f"Bearer {local_token(tmp_path, iss='someone-else')}",
    ):
        assert verify_token(tmp_path, header) is None, header
    # The same claims, bounded, are accepted: what is refused above is the missing bound.
    assert verify_token(tmp_path, f"Bearer {local_token(tmp_path)}") is not None
    short = verify_token(tmp_path, f"Bearer {local_token(tmp_path)}", max_lifetime_seconds=600)
    assert short is None
