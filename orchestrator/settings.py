"""Orchestrator Lambda configuration, parsed once from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrchestratorSettings(BaseSettings):
    """Environment of the API, worker and dead-letter functions (`LOCKGATE_` prefix).

    `tool_functions` is a JSON object (tool name → function name or ARN) and `allowed_models`
    a JSON list. `aws_endpoint_url` is set only by `lockgate serve`, pointing DynamoDB and SQS
    at a local endpoint; in Lambda it is empty and the clients use AWS.
    """

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="ignore", frozen=True)

    table_name: str = "lockgate-sessions"
    queue_url: str = ""
    tool_functions: dict[str, str] = Field(default_factory=dict)
    model_id: str = "amazon.nova-lite-v1:0"
    synthesizer_model_id: str = ""
    allowed_models: list[str] = Field(default_factory=list)
    max_steps: int = Field(default=15, ge=1, le=100)
    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)
    max_seconds: float | None = Field(default=None, gt=0)
    websocket_endpoint: str = ""
    aws_endpoint_url: str = ""
    lease_seconds: float = Field(default=330.0, gt=0)
    reserve_seconds: float = Field(default=30.0, ge=0)
    max_wait_seconds: float = Field(default=25.0, ge=0, le=28)
    prompt_cache: bool = False  # Bedrock prompt caching of instructions + catalog
    session_retention_days: float = Field(default=30, gt=0)  # then DynamoDB's TTL removes it

    def model_allowed(self, model: str | None) -> bool:
        """A caller may pick the default model or one of the allowed ones."""
        return model is None or model == self.model_id or model in self.allowed_models
