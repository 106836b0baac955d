"""The API handler fed the real API Gateway REST proxy-event shape (Cognito authorizer
claims, base64 bodies, multi-value headers) and bad input: every answer is a clear 4xx,
nothing is created by a rejected request, and a retried request never starts two agents."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from local.cloud import LocalContext
from orchestrator.handlers.api import handler
from orchestrator.sessions.http_input import prefer_wait
from tests.sessions.conftest import Stack

# An event as API Gateway (REST, Lambda proxy integration, Cognito user pool authorizer)
# sends it; values as in AWS's documentation of the format.
GATEWAY_EVENT: dict[str, Any] = {
    "resource": "/sessions",
    "path": "/sessions",
    "httpMethod": "POST",
    "headers": {
        "Accept": "*/*",
        "Authorization": "Bearer eyJraWQiOi...",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "X-Forwarded-For": "198.51.100.7",
    },
    "multiValueHeaders": {
        "Accept": ["*/*"],
        "Authorization": ["Bearer eyJraWQiOi..."],
        "Content-Type": ["application/json"],
        "Host": ["abc123.execute-api.eu-west-1.amazonaws.com"],
        "X-Forwarded-For": ["198.51.100.7"],
    },
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourceId": "2gxmpl",
        "resourcePath": "/sessions",
        "httpMethod": "POST",
        "extendedRequestId": "JJbxmplHYosFVYQ=",
        "requestTime": "02/Dec/2026:18:00:00 +0000",
        "path": "/prod/sessions",
        "accountId": "123456789012",
        "protocol": "HTTP/1.1",
        "stage": "prod",
        "domainPrefix": "abc123",
        "requestTimeEpoch": 1796234400000,
        "requestId": "8b2e5a4c-0000-4000-8000-000000000000",
        "identity": {"sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "apiId": "abc123",
        "authorizer": {
            "claims": {
                "sub": "alice",
                "custom:tenant_id": "acme",
                # API Gateway passes Cognito's list claims as one string.
                "cognito:groups": "customers:read,flights:read,bookings:write,weather:read",
                "token_use": "id",
                "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
                "exp": "Wed Dec 02 19:00:00 UTC 2026",
            }
        },
    },
    "body": None,
    "isBase64Encoded": False,
}


def event(
    method: str = "POST",
    path: str = "/sessions",
    *,
    body: str | None = None,
    base64_body: bytes | None = None,
    headers: dict[str, str] | None = None,
    multi: dict[str, list[str]] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    built = copy.deepcopy(GATEWAY_EVENT)
    built.update(httpMethod=method, path=path, resource=path)
    built["requestContext"].update(httpMethod=method, resourcePath=path)
    if base64_body is not None:
        built.update(body=base64.b64encode(base64_body).decode(), isBase64Encoded=True)
    else:
        built["body"] = body
    for name, value in (headers or {}).items():
        built["headers"][name] = value
        built["multiValueHeaders"][name] = [value]
    for name, values in (multi or {}).items():
        built["multiValueHeaders"][name] = values
        built["headers"][name] = values[-1]
    if query:
        built["queryStringParameters"] = query
        built["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return built


def call(built: dict[str, Any]) -> tuple[int, Any]:
    response = handler(built, LocalContext(function_name="lockgate-api"))  # type: ignore[arg-type]
    return int(response["statusCode"]), json.loads(response["body"]) if response["body"] else None


def own_sessions(stack: Stack) -> list[dict[str, Any]]:
    status, page = call(event("GET", "/sessions", query={"limit": "100"}))
    assert status == 200
    return list(page["sessions"])


@pytest.mark.usefixtures("stack")
def test_the_gateway_event_shape_creates_a_session_for_the_claimed_user(stack: Stack) -> None:
    status, view = call(event(body=json.dumps({"request": "book Ada"})))
    assert status == 202
    record = stack.worker.repo.get(view["session_id"])
    assert (record.principal.user_id, record.principal.tenant_id) == ("alice", "acme")
    assert "bookings:write" in record.principal.scopes


BAD_BODIES: list[tuple[str, dict[str, Any], int]] = [
    ("1000 levels deep", {"body": "[" * 1000 + "]" * 1000}, 400),
    ("deep inside an object", {"body": '{"request": ' + "[" * 600 + "]" * 600 + "}"}, 400),
    ("invalid base64", {"body": "%%%not base64%%%", "headers": {}}, 400),
    ("base64 of non-UTF-8", {"base64_body": b"\xff\xfe\x00{"}, 400),
    ("NaN", {"body": '{"request": "x", "options": {"max_usd": NaN}}'}, 400),
    ("Infinity", {"body": '{"request": "x", "options": {"max_seconds": Infinity}}'}, 400),
    ("duplicate keys", {"body": '{"request": "a", "request": "b"}'}, 400),
    ("not JSON", {"body": "request=book+Ada"}, 400),
    (
        "a form",
        {
            "body": "request=book+Ada",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        415,
    ),
    (
        "multipart without a boundary",
        {"body": "--x\r\n\r\n", "headers": {"Content-Type": "multipart/form-data"}},
        415,
    ),
    ("no content type", {"body": '{"request": "x"}', "headers": {"Content-Type": ""}}, 415),
    ("too large", {"body": json.dumps({"request": "x" * 70_000})}, 413),
    ("a string for a number", {"body": '{"request": "x", "options": {"max_steps": "5"}}'}, 422),
    ("a boolean for a number", {"body": '{"request": "x", "options": {"max_steps": true}}'}, 422),
    ("extra fields", {"body": '{"request": "x", "principal": {"tenant_id": "globex"}}'}, 422),
]


@pytest.mark.parametrize(("case", "shape", "expected"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_clear_answer_and_create_nothing(
    stack: Stack, case: str, shape: dict[str, Any], expected: int
) -> None:
    shape = dict(shape)
    built = event(**shape)
    if case == "invalid base64":
        built["isBase64Encoded"] = True
    status, answer = call(built)
    assert status == expected
    assert answer["message"]
    assert own_sessions(stack) == []


def test_a_base64_json_body_is_accepted(stack: Stack) -> None:
    status, view = call(event(base64_body=json.dumps({"request": "book Ada"}).encode()))
    assert status == 202
    assert [s["session_id"] for s in own_sessions(stack)] == [view["session_id"]]


@pytest.mark.parametrize(
    ("headers", "multi", "seconds"),
    [
        ({"Prefer": "wait=3"}, None, 3),
        ({"Prefer": "WAIT=3"}, None, 3),
        ({"Prefer": "wait = 3"}, None, 3),
        ({"Prefer": 'wait="3"'}, None, 3),
        ({"prefer": "respond-async, wait=3; x=y"}, None, 3),
        (None, {"Prefer": ["respond-async", "wait=3"]}, 3),
        ({"Prefer": "wait=soon"}, None, 0),
        ({"Prefer": "waiting=3"}, None, 0),
        (None, None, 0),
    ],
)
def test_prefer_is_read_per_rfc_7240_from_both_header_maps(
    headers: dict[str, str] | None, multi: dict[str, list[str]] | None, seconds: float
) -> None:
    built = event(body="{}", headers=headers, multi=multi)
    if multi:
        built["headers"].pop("Prefer", None)  # only in multiValueHeaders
    assert prefer_wait(built) == seconds


def test_an_idempotency_key_never_starts_two_agents(stack: Stack) -> None:
    body = json.dumps({"request": "book Ada"})
    key = {"Idempotency-Key": "retry-7f3a"}
    first_status, first = call(event(body=body, headers=key))
    again_status, again = call(event(body=body, headers=key))
    assert (first_status, again_status) == (202, 202)
    assert again["session_id"] == first["session_id"]
    assert [s["session_id"] for s in own_sessions(stack)] == [first["session_id"]]

    # The same key with another request is a conflict; another user's same key is theirs.
    status, _ = call(event(body=json.dumps({"request": "book Grace"}), headers=key))
    assert status == 409
    carol = event(body=body, headers=key)
    carol["requestContext"]["authorizer"]["claims"].update(
        {"sub": "carol", "custom:tenant_id": "globex"}
    )
    status, theirs = call(carol)
    assert status == 202 and theirs["session_id"] != first["session_id"]

    # The queue may hold the retry's message too: the session still runs once.
    stack.drain()
    assert stack.worker.repo.get(first["session_id"]).status.value == "completed"
    assert own_sessions(stack)[0]["status"] == "completed"


def test_a_malformed_idempotency_key_is_refused(stack: Stack) -> None:
    status, _ = call(event(body='{"request": "x"}', headers={"Idempotency-Key": "has space"}))
    assert status == 400
    assert own_sessions(stack) == []


def test_sessions_are_listed_newest_first_a_page_at_a_time(stack: Stack) -> None:
    created = [call(event(body=json.dumps({"request": f"r{i}"})))[1] for i in range(5)]
    status, page = call(event("GET", "/sessions", query={"limit": "2"}))
    assert status == 200
    assert [s["request"] for s in page["sessions"]] == ["r4", "r3"]
    _, rest = call(
        event("GET", "/sessions", query={"limit": "10", "before": str(page["next_before"])})
    )
    assert [s["request"] for s in rest["sessions"]] == ["r2", "r1", "r0"]
    assert rest["next_before"] is None
    assert {s["session_id"] for s in page["sessions"] + rest["sessions"]} == {
        c["session_id"] for c in created
    }
    # Another user sees none of them.
    carol = event("GET", "/sessions")
    carol["requestContext"]["authorizer"]["claims"].update(
        {"sub": "carol", "custom:tenant_id": "globex"}
    )
    assert call(carol)[1]["sessions"] == []
