"""Orchestrator settings from a Lambda environment: JSON fields, any case, clear failures."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from orchestrator.handlers.websocket_authorizer import WebSocketSettings
from orchestrator.settings import EnvironmentSettings, OrchestratorSettings


def test_an_empty_environment_gives_the_defaults() -> None:
    assert OrchestratorSettings.from_env({}) == OrchestratorSettings()


def test_values_are_read_by_prefix_in_any_case_and_validated() -> None:
    config = OrchestratorSettings.from_env(
        {
            "LOCKGATE_TABLE_NAME": "sessions",
            "lockgate_queue_url": "https://sqs.example/q",
            "LOCKGATE_TOOL_FUNCTIONS": '{"customer_lookup": "arn:aws:lambda:eu-west-1:1:f"}',
            "LOCKGATE_ALLOWED_MODELS": '["amazon.nova-pro-v1:0"]',
            "LOCKGATE_MAX_STEPS": "7",
            "LOCKGATE_MAX_USD": "0.5",
            "LOCKGATE_PROMPT_CACHE": "true",
            "LOCKGATE_UNKNOWN": "ignored",
            "TABLE_NAME": "not ours",
        }
    )
    assert config.table_name == "sessions"
    assert config.queue_url == "https://sqs.example/q"
    assert config.tool_functions == {"customer_lookup": "arn:aws:lambda:eu-west-1:1:f"}
    assert config.allowed_models == ["amazon.nova-pro-v1:0"]
    assert (config.max_steps, config.max_usd, config.prompt_cache) == (7, 0.5, True)
    assert config.model_allowed("amazon.nova-pro-v1:0")


def test_json_null_keeps_the_default() -> None:
    assert OrchestratorSettings.from_env({"LOCKGATE_ALLOWED_MODELS": "null"}).allowed_models == []


@pytest.mark.parametrize("value", ["customer_lookup=f", ""])
def test_a_json_field_that_is_not_json_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="LOCKGATE_TOOL_FUNCTIONS must be JSON"):
        OrchestratorSettings.from_env({"LOCKGATE_TOOL_FUNCTIONS": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOCKGATE_TOOL_FUNCTIONS", '["customer_lookup"]'),
        ("LOCKGATE_MAX_STEPS", "0"),
        ("LOCKGATE_MAX_TOKENS", "many"),
    ],
)
def test_an_invalid_value_is_a_validation_error(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        OrchestratorSettings.from_env({name: value})


def test_the_websocket_authorizer_reads_its_user_pool() -> None:
    config = WebSocketSettings.from_env(
        {"LOCKGATE_USER_POOL_ID": "eu-west-1_X", "LOCKGATE_REGION": "eu-west-1"}
    )
    assert (config.user_pool_id, config.region, config.jwks_url) == ("eu-west-1_X", "eu-west-1", "")


def test_optional_and_nested_structured_fields_are_read_as_json() -> None:
    class Limits(BaseModel):
        steps: int

    class Custom(EnvironmentSettings):
        routes: dict[str, str] | None = None
        tags: frozenset[str] = frozenset()
        limits: Limits | None = None
        name: str = ""

    config = Custom.from_env(
        {
            "LOCKGATE_ROUTES": '{"a": "b"}',
            "LOCKGATE_TAGS": '["x", "y"]',
            "LOCKGATE_LIMITS": '{"steps": 3}',
            "LOCKGATE_NAME": '{"not": "json for a string field"}',
        }
    )
    assert config.routes == {"a": "b"}
    assert config.tags == frozenset({"x", "y"})
    assert config.limits == Limits(steps=3)
    assert config.name == '{"not": "json for a string field"}'


def test_provider_secrets_are_a_json_object_of_known_providers() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:1:secret:openai-Ab12Cd"
    config = OrchestratorSettings.from_env({"LOCKGATE_PROVIDER_SECRETS": f'{{"openai": "{arn}"}}'})
    assert config.provider_secret("openai") == arn
    assert config.provider_secret("anthropic") is None
    assert config.provider_secret("bedrock") is None
    with pytest.raises(ValidationError):
        OrchestratorSettings.from_env({"LOCKGATE_PROVIDER_SECRETS": '{"mistral": "arn"}'})
