"""The Lambda invoker against botocore's Stubber (moto cannot run Lambda code without Docker)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from orchestrator.invokers.lambda_ import LambdaInvoker
from orchestrator.types import ErrorKind

ENVELOPE = {
    "principal": {"user_id": "alice", "tenant_id": "acme", "scopes": ["customers:read"]},
    "input": {"customer_id": "C-1001"},
    "idempotency_key": "s:0",
}


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "lambda", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    return client, Stubber(client)


def body(payload: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(payload), len(payload))


def invoke_with(response: dict[str, Any] | None = None, error: str | None = None) -> Any:
    client, stub = stubbed()
    expected = {
        "FunctionName": "lockgate-customer-lookup",
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(ENVELOPE).encode(),
    }
    if error:
        stub.add_client_error("invoke", error, "no", 429)
    else:
        stub.add_response("invoke", response or {}, expected)
    with stub:
        return LambdaInvoker({"customer_lookup": "lockgate-customer-lookup"}, client).invoke(
            "customer_lookup", ENVELOPE
        )


def test_ok_response_becomes_an_observation() -> None:
    payload = json.dumps({"status": "ok", "output": {"customer_id": "C-1001"}}).encode()
    observation = invoke_with({"StatusCode": 200, "Payload": body(payload)})
    assert observation.status == "ok"
    assert observation.output == {"customer_id": "C-1001"}


def test_tool_error_passes_through() -> None:
    payload = json.dumps(
        {"status": "error", "error": {"kind": "forbidden", "message": "no"}}
    ).encode()
    observation = invoke_with({"StatusCode": 200, "Payload": body(payload)})
    assert observation.error_kind is ErrorKind.FORBIDDEN


def test_unhandled_function_error_is_internal() -> None:
    payload = json.dumps({"errorMessage": "boom", "errorType": "KeyError"}).encode()
    observation = invoke_with(
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body(payload)}
    )
    assert observation.error_kind is ErrorKind.INTERNAL
    assert "boom" not in (observation.message or "")


def test_timeout_is_transient() -> None:
    payload = json.dumps({"errorMessage": "2026-01-01 Task timed out after 10.00 seconds"}).encode()
    observation = invoke_with(
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body(payload)}
    )
    assert observation.error_kind is ErrorKind.TRANSIENT


def test_throttling_is_transient() -> None:
    assert invoke_with(error="TooManyRequestsException").error_kind is ErrorKind.TRANSIENT


def test_malformed_payload_is_internal() -> None:
    observation = invoke_with({"StatusCode": 200, "Payload": body(b'{"status": "maybe"}')})
    assert observation.error_kind is ErrorKind.INTERNAL


def test_text_that_is_not_unicode_is_a_malformed_response() -> None:
    # Python's own parser would accept a lone surrogate; no checkpoint could then be written.
    payload = b'{"status": "ok", "output": {"name": "\\ud800"}}'
    observation = invoke_with({"StatusCode": 200, "Payload": body(payload)})
    assert observation.status == "error"
    assert observation.error_kind is ErrorKind.INTERNAL


def test_undeployed_tool_is_not_invoked() -> None:
    client, stub = stubbed()
    with stub:
        observation = LambdaInvoker({}, client).invoke("customer_lookup", ENVELOPE)
    assert observation.error_kind is ErrorKind.INTERNAL
