"""Orchestrator Lambda configuration, parsed once from the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import NoneType, UnionType
from typing import Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING
from orchestrator.pricing import Price

PREFIX = "LOCKGATE_"
# What a model provider's key secret holds until the operator puts the key into it (the
# stack creates it with this value; the worker refuses it rather than send it).
PROVIDER_KEY_PLACEHOLDER = "put-the-provider-api-key-here"


class EnvironmentSettings(BaseModel):
    """Settings read from the environment: field `name` from `LOCKGATE_NAME` (in any case).

    A structured field (a dict, list, set, tuple or model, optional or not) is given as JSON;
    every value is then validated by the model. A plain model and this one loop keep
    pydantic-settings out of every function's cold start.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Read the Lambda environment; ValueError names a variable whose JSON is invalid."""
        variables = {name.upper(): value for name, value in environ.items()}
        data: dict[str, Any] = {}
        for field, info in cls.model_fields.items():
            name = f"{PREFIX}{field.upper()}"
            value: Any = variables.get(name)
            if value is not None and _structured(info.annotation):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise ValueError(f"{name} must be JSON: {exc}") from exc
            if value is not None:  # unset, or JSON `null`: the field keeps its default
                data[field] = value
        return cls.model_validate(data)


def _structured(annotation: Any) -> bool:
    """Whether a field's values are containers or models (read from JSON), `X | None` included."""
    if get_origin(annotation) in (Union, UnionType):
        return any(_structured(member) for member in get_args(annotation) if member is not NoneType)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (dict, list, set, frozenset, tuple)


class OrchestratorSettings(EnvironmentSettings):
    """Environment of the API, worker and dead-letter functions (`LOCKGATE_` prefix).

    `tool_functions` is a JSON object (tool name → function name or ARN) and `allowed_models`
    a JSON list. `provider_secrets` is a JSON object (`openai`/`anthropic` → the ARN of the
    Secrets Manager secret holding that provider's API key; the worker's only). `aws_endpoint_url` is set only by `lockgate serve`, pointing DynamoDB and SQS
    at a local endpoint; in Lambda it is empty and the clients use AWS.
    """

    table_name: str = "lockgate-sessions"
    queue_url: str = ""
    dead_letter_queue_url: str = ""  # only local pollers read it; in AWS a redrive policy moves
    tool_functions: dict[str, str] = Field(default_factory=dict)
    model_id: str = "amazon.nova-lite-v1:0"
    synthesizer_model_id: str = ""
    allowed_models: list[str] = Field(default_factory=list)
    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, le=MAX_STEPS_CEILING)
    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)
    max_seconds: float | None = Field(default=None, gt=0)
    websocket_endpoint: str = ""
    aws_endpoint_url: str = ""
    lease_seconds: float = Field(default=330.0, gt=0)
    reserve_seconds: float = Field(default=30.0, ge=0)
    max_wait_seconds: float = Field(default=25.0, ge=0, le=28)
    prompt_cache: bool = False  # Bedrock prompt caching of instructions + catalog
    prices: dict[str, Price] = Field(default_factory=dict)  # over pricing.DEFAULT_PRICES
    provider_secrets: dict[Literal["openai", "anthropic"], str] = Field(default_factory=dict)
    # How long a provider key read from Secrets Manager is reused: a key put into the secret
    # (or changed) reaches running workers within this time, without a cold start.
    provider_secret_max_age_seconds: int = Field(default=300, ge=0)
    session_retention_days: float = Field(default=30, gt=0)  # then DynamoDB's TTL removes it
    # Where sessions and the work queue live: DynamoDB + SQS in the cloud, PostgreSQL for
    # `lockgate serve` (`sessions_database_url`: the runtime's own role), memory for tests.
    sessions_backend: Literal["dynamodb", "postgres", "memory"] = "dynamodb"
    sessions_database_url: str = ""
    visibility_seconds: float = Field(default=900.0, gt=0)  # postgres queue: as the SQS queue
    max_receive_count: int = Field(default=3, ge=1)

    def provider_secret(self, provider: str) -> str | None:
        """The ARN of `provider`'s key secret, if the deployment has one."""
        return next((arn for name, arn in self.provider_secrets.items() if name == provider), None)

    def model_allowed(self, model: str | None) -> bool:
        """A caller may pick the default model or one of the allowed ones."""
        return model is None or model == self.model_id or model in self.allowed_models
