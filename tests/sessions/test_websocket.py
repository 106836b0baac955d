"""Progress push: the `$connect` authorizer with real RS256 tokens and a JWKS endpoint, the
connect/subscribe/disconnect routes on the sessions table, and pushes checked by Stubber
against the real apigatewaymanagementapi service model."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from botocore.stub import ANY, Stubber
from cryptography.hazmat.primitives.asymmetric import rsa

from local.cloud import LocalContext
from orchestrator.handlers import websocket, websocket_authorizer
from orchestrator.sessions.dynamodb import DynamoSubscriptions
from orchestrator.sessions.push import WebSocketPush
from tests.conftest import Database
from tests.jwks import jwks_server
from tests.sessions.conftest import Stack

REGION, POOL, CLIENT = "eu-west-1", "eu-west-1_TEST", "client-123"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
DEMO_EVENTS = 10  # started, 3 times (proposed, result), proposed + rejected, final


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    with jwks_server(signing_key) as url:
        yield url


def token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    claims = {
        "sub": "alice",
        "custom:tenant_id": "acme",
        "cognito:groups": ["customers:read"],
        "iss": ISSUER,
        "aud": CLIENT,
        "token_use": "id",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def verifier_env(jwks_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("LOCKGATE_USER_POOL_ID", POOL),
        ("LOCKGATE_USER_POOL_CLIENT_ID", CLIENT),
        ("LOCKGATE_REGION", REGION),
        ("LOCKGATE_JWKS_URL", jwks_url),
    ):
        monkeypatch.setenv(name, value)
    websocket_authorizer._verifier.cache_clear()
    yield
    websocket_authorizer._verifier.cache_clear()


def authorize(value: str | None) -> dict[str, Any]:
    event = {
        "methodArn": "arn:aws:execute-api:eu-west-1:1:api/prod/$connect",
        "queryStringParameters": None if value is None else {"token": value},
    }
    return websocket_authorizer.authorize(event, LocalContext())  # type: ignore[arg-type]


def effect(policy: dict[str, Any]) -> str:
    return str(policy["policyDocument"]["Statement"][0]["Effect"])


def test_authorizer_allows_only_valid_id_tokens(
    signing_key: rsa.RSAPrivateKey, verifier_env: None
) -> None:
    allowed = authorize(token(signing_key))
    assert effect(allowed) == "Allow"
    assert allowed["context"] == {
        "user_id": "alice",
        "tenant_id": "acme",
        "scopes": "customers:read",
    }

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        None,
        "not-a-token",
        token(other_key),
        token(signing_key, exp=int(time.time()) - 10),
        token(signing_key, aud="someone-else"),
        token(signing_key, iss="https://evil.example"),
        token(signing_key, token_use="access"),
        token(signing_key, **{"custom:tenant_id": ""}),
    ):
        assert effect(authorize(bad)) == "Deny"


def ws_event(
    route: str, connection: str, principal: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": route,
            "connectionId": connection,
            "authorizer": principal or {},
        },
        "body": None if body is None else json.dumps(body),
    }


ALICE = {"user_id": "alice", "tenant_id": "acme", "scopes": "customers:read"}
CAROL = {"user_id": "carol", "tenant_id": "globex", "scopes": "customers:read"}


def call(event: dict[str, Any]) -> dict[str, Any]:
    return websocket.handler(event, LocalContext())  # type: ignore[arg-type]


def test_subscribed_connections_receive_every_event(stack: Stack, database: Database) -> None:
    session_id = stack.create()
    assert call(ws_event("$connect", "conn-a", ALICE))["statusCode"] == 200
    assert call(ws_event("$connect", "conn-c", CAROL))["statusCode"] == 200
    assert (
        call(ws_event("subscribe", "conn-c", body={"session_id": session_id}))["statusCode"] == 404
    )
    assert (
        call(ws_event("subscribe", "conn-a", body={"session_id": session_id}))["statusCode"] == 200
    )

    management = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="https://example.execute-api.eu-west-1.amazonaws.com/prod",
        region_name="eu-west-1",
    )
    stub = Stubber(management)
    for _ in range(DEMO_EVENTS):
        stub.add_response("post_to_connection", {}, {"ConnectionId": "conn-a", "Data": ANY})
    push = WebSocketPush(
        DynamoSubscriptions(stack.cloud.table, stack.cloud.client("dynamodb")), management
    )
    stack.use(dataclasses.replace(stack.worker, push=push))
    with stub:
        stack.drain()
    stub.assert_no_pending_responses()
    assert database.rows("SELECT count(*) FROM bookings") == [(1,)]

    assert call(ws_event("$disconnect", "conn-a"))["statusCode"] == 200
    assert push.subscriptions.connections(session_id) == []


def test_a_gone_connection_is_forgotten(stack: Stack) -> None:
    session_id = stack.create()
    call(ws_event("$connect", "conn-gone", ALICE))
    call(ws_event("subscribe", "conn-gone", body={"session_id": session_id}))
    management = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="https://example.execute-api.eu-west-1.amazonaws.com/prod",
        region_name="eu-west-1",
    )
    stub = Stubber(management)
    stub.add_client_error("post_to_connection", "GoneException", "gone", 410)
    push = WebSocketPush(
        DynamoSubscriptions(stack.cloud.table, stack.cloud.client("dynamodb")), management
    )
    stack.use(dataclasses.replace(stack.worker, push=push))
    with stub:
        stack.drain()
    assert push.subscriptions.connections(session_id) == []
    _, _, view = stack.api("GET", f"/sessions/{session_id}")
    assert view["status"] == "completed"  # delivery problems never fail a session
