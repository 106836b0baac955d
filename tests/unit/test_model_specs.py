"""Model specs as the worker reads them."""

from __future__ import annotations

import pytest

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
