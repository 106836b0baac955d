"""The gate both the loop and the MCP face go through, with a hand-written invoker."""

from __future__ import annotations

import json
import random

from local.mcp import ToolFace
from orchestrator.catalog import Catalog
from orchestrator.gate import ToolGate
from orchestrator.limits import Limits
from orchestrator.types import ErrorKind, Observation, ToolCall
from tests.fakes import ALICE, BOB, RecordingInvoker
from tools.registry import CONTRACTS


def gate(invoker: RecordingInvoker, limits: Limits | None = None) -> ToolGate:
    return ToolGate(
        Catalog(CONTRACTS), invoker, limits or Limits(), sleep=lambda _s: None, rng=random.Random(1)
    )


def call(tool: str, **arguments: object) -> ToolCall:
    return ToolCall(call_id="c", tool=tool, arguments=json.dumps(arguments))


def test_a_refused_call_never_reaches_the_invoker() -> None:
    invoker = RecordingInvoker()
    observation, invoked = gate(invoker).run(call("customer_lookup", customer_id="x"), ALICE, "k")
    assert not invoked and observation.error_kind is ErrorKind.VALIDATION
    observation, invoked = gate(invoker).run(
        call("customer_update", customer_id="C-1001"), BOB, "k"
    )
    assert not invoked and "unknown tool" in (observation.message or "")
    assert invoker.calls == []


def test_a_valid_call_carries_the_principal_the_normalized_input_and_the_key() -> None:
    invoker = RecordingInvoker()
    observation, invoked = gate(invoker).run(
        call("customer_lookup", customer_id=" C-1001 "), ALICE, "mcp:conn:7"
    )
    assert invoked and observation.status == "ok"
    [(tool, envelope)] = invoker.calls
    assert tool == "customer_lookup"
    assert envelope["input"] == {"customer_id": "C-1001"}
    assert envelope["principal"]["user_id"] == "alice"
    assert envelope["principal"]["tenant_id"] == "acme"
    assert envelope["idempotency_key"] == "mcp:conn:7"


def test_transient_failures_are_retried_with_the_same_key() -> None:
    answers = [
        Observation(status="error", error_kind=ErrorKind.TRANSIENT, message="busy"),
        Observation(status="ok", output={"ok": True}),
    ]
    invoker = RecordingInvoker(lambda _tool, _env: answers.pop(0))
    observation, invoked = gate(invoker, Limits(tool_attempts=3)).run(
        call("customer_lookup", customer_id="C-1001"), ALICE, "k1"
    )
    assert invoked and observation.status == "ok"
    assert [env["idempotency_key"] for _, env in invoker.calls] == ["k1", "k1"]


def test_the_mcp_face_answers_errors_as_error_results_and_offers_only_allowed_tools() -> None:
    invoker = RecordingInvoker()
    face = ToolFace(gate(invoker))
    assert {t.name for t in face.tools(BOB)} == {"customer_lookup"}
    refused = face.call(BOB, "flight_book", {"customer_id": "C-1001"}, "mcp:a:1")
    assert refused.is_error and refused.structured_content["details"]["available"] == [
        "customer_lookup"
    ]
    ok = face.call(BOB, "customer_lookup", {"customer_id": "C-1001"}, "mcp:a:2")
    assert not ok.is_error and ok.structured_content == {
        "status": "ok",
        "output": {"tool": "customer_lookup"},
    }
    assert [tool for tool, _ in invoker.calls] == ["customer_lookup"]
