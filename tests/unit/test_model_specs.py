"""Model specs as the worker and the deployment's configuration read them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import ModelsConfig
from orchestrator.models.specs import UnknownModel, parse_spec


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("amazon.nova-lite-v1:0", ("bedrock", "amazon.nova-lite-v1:0")),
        (
            "eu.anthropic.claude-3-haiku-20240307-v1:0",
            ("bedrock", "eu.anthropic.claude-3-haiku-20240307-v1:0"),
        ),
        ("bedrock:amazon.nova-pro-v1:0", ("bedrock", "amazon.nova-pro-v1:0")),
        ("openai:gpt-4.1-mini", ("openai", "gpt-4.1-mini")),
        ("openai:qwen2.5:7b", ("openai", "qwen2.5:7b")),
        ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
    ],
)
def test_a_spec_names_its_provider_and_a_bare_bedrock_id_keeps_its_colon(
    spec: str, parsed: tuple[str, str]
) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["gpt:4", "openai:", "anthropic:", "mistral:large", "nova", ""])
def test_a_spec_without_a_known_provider_or_model_is_refused(spec: str) -> None:
    with pytest.raises(UnknownModel):
        parse_spec(spec)


def test_the_configured_providers_follow_from_the_models() -> None:
    # Given Bedrock models only: no provider besides Bedrock
    assert ModelsConfig().providers == ()
    # When the allow-list and the synthesizer name other providers
    models = ModelsConfig(
        allowed=("anthropic:claude-sonnet-4-5", "bedrock:amazon.nova-pro-v1:0"),
        synthesizer="openai:gpt-4.1-mini",
        extra_model_ids=("amazon.nova-micro-v1:0",),
    )
    # Then each is a provider once, and only Bedrock ids are Bedrock grants
    assert models.providers == ("openai", "anthropic")
    assert models.model_ids == (
        "amazon.nova-lite-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova-micro-v1:0",
    )


@pytest.mark.parametrize(
    "models",
    [
        {"allowed": ["gpt:4"]},
        {"allowed": ["openai:two words"]},
        {"router_model_id": "bedrock:Not-A-Bedrock-Id"},
        {"extra_model_ids": ["openai:gpt-4.1-mini"]},  # extra ids are Bedrock grants only
        {"base_urls": {"openai": "https://llm.example.com/v1"}},  # no openai: model uses it
        {"allowed": ["openai:m"], "base_urls": {"openai": "http://llm.example.com/v1"}},
        {"allowed": ["openai:m"], "base_urls": {"mistral": "https://llm.example.com"}},
    ],
)
def test_the_configuration_refuses_what_the_worker_could_not_build(
    models: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        ModelsConfig.model_validate(models)
