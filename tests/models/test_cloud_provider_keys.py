"""The worker's cloud model factory (`wiring.provider_model`) with a provider key in Secrets
Manager (moto), the real SDK clients against the local wire-format server: the key from the
secret is the one the provider receives, and it appears in no log, no event, no state and
not in the environment."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from orchestrator import wiring
from orchestrator.models.bedrock import BedrockModel
from orchestrator.ports import ModelRequest
from orchestrator.records import as_data
from orchestrator.settings import PROVIDER_KEY_PLACEHOLDER
from orchestrator.types import Outcome
from tests.models.conftest import args, run_session
from tests.models.wire import Provider, anthropic_reply, openai_reply

OPENAI_KEY = "sk-proj-from-the-secret-1f7c"
ANTHROPIC_KEY = "sk-ant-from-the-secret-93ab"


@dataclass
class Keys:
    """The deployment's key secrets, by provider."""

    arns: dict[str, str]

    def put(self, provider: str, value: str) -> None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.arns[provider], SecretString=value
        )


def _fresh() -> None:
    wiring.settings.cache_clear()
    wiring._secrets.cache_clear()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, provider: Provider) -> Iterator[Keys]:
    """The worker's environment as the stack sets it: secret ARNs, the provider's base URL,
    and a different key in the SDK's own variable (which the secret's must win over)."""
    with mock_aws():
        manager = boto3.client("secretsmanager")
        arns = {
            name: manager.create_secret(Name=f"lockgate/{name}", SecretString=key)["ARN"]
            for name, key in (("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY))
        }
        monkeypatch.setenv("LOCKGATE_PROVIDER_SECRETS", json.dumps(arns))
        monkeypatch.setenv("OPENAI_BASE_URL", f"{provider.url}/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", provider.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment")
        _fresh()
        yield Keys(arns)
    _fresh()


def _bare() -> ModelRequest:
    return ModelRequest(system="s", request="r", exchanges=(), tools=())


@pytest.mark.parametrize(
    ("spec", "key", "header", "sent"),
    [
        ("openai:gpt-test", OPENAI_KEY, "authorization", f"Bearer {OPENAI_KEY}"),
        # This SDK version sends the key as a bearer token too (not `x-api-key`).
        ("anthropic:claude-test", ANTHROPIC_KEY, "authorization", f"Bearer {ANTHROPIC_KEY}"),
    ],
)
def test_the_worker_sends_the_key_from_the_secret_and_logs_it_nowhere(
    spec: str,
    key: str,
    header: str,
    sent: str,
    keys: Keys,
    provider: Provider,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug logs, the SDKs' included
    if spec.startswith("openai:"):
        provider.queue(
            openai_reply(tool_calls=[("call_1", "customer_lookup", args(customer_id="C-1001"))]),
            openai_reply(content="Ada Lovelace is customer C-1001."),
        )
    else:
        provider.queue(
            anthropic_reply(tool_uses=[("toolu_1", "customer_lookup", {"customer_id": "C-1001"})]),
            anthropic_reply(text="Ada Lovelace is customer C-1001."),
        )

    state, invoker, events = run_session(wiring.provider_model(spec))

    assert state.outcome is Outcome.COMPLETED
    assert invoker.calls[0][1]["input"] == {"customer_id": "C-1001"}
    assert len(provider.sent) == 2
    assert all(request.headers[header] == sent for request in provider.sent)
    captured = capfd.readouterr()
    shown = [
        caplog.text,
        captured.out,
        captured.err,
        json.dumps(as_data(state)),
        *(json.dumps(as_data(e), default=str) for e in events.events),
        json.dumps([request.body for request in provider.sent]),
    ]
    assert not [text for text in shown if key in text]
    assert key not in os.environ.values()


def test_a_key_put_later_is_used_once_the_cached_one_ages_out(
    keys: Keys, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker that reuses a key for no time at all
    monkeypatch.setenv("LOCKGATE_PROVIDER_SECRET_MAX_AGE_SECONDS", "0")
    _fresh()
    provider.queue(openai_reply(content="one"), openai_reply(content="two"))
    wiring.provider_model("openai:gpt-test").decide(_bare())
    # When the operator puts a new key, with a trailing newline as `echo` leaves it
    keys.put("openai", "sk-proj-rotated-55d0\n")
    wiring.provider_model("openai:gpt-test").decide(_bare())
    # Then the next model sends the new key, trimmed
    assert [r.headers["authorization"] for r in provider.sent] == [
        f"Bearer {OPENAI_KEY}",
        "Bearer sk-proj-rotated-55d0",
    ]


def test_the_placeholder_the_stack_writes_is_refused_before_any_request(
    keys: Keys, provider: Provider
) -> None:
    keys.put("anthropic", PROVIDER_KEY_PLACEHOLDER)

    with pytest.raises(ValueError, match="put-secret-value"):
        wiring.provider_model("anthropic:claude-test")

    assert provider.sent == []


def test_without_a_secret_the_sdk_reads_its_own_variable(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKGATE_PROVIDER_SECRETS", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{provider.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    _fresh()
    provider.queue(openai_reply(content="hello"))
    try:
        wiring.provider_model("openai:gpt-test").decide(_bare())
    finally:
        _fresh()

    assert provider.sent[0].headers["authorization"] == "Bearer sk-from-the-environment"


def test_a_bare_bedrock_id_builds_the_bedrock_adapter_without_reading_a_secret(
    keys: Keys,
) -> None:
    # The deployment's default router is a bare id whose colon belongs to the id.
    model = wiring.provider_model("amazon.nova-lite-v1:0")

    assert isinstance(model, BedrockModel)
    assert model.model_id == "amazon.nova-lite-v1:0"
