"""Orchestrator Lambda configuration, parsed once from the environment."""

from __future__ import annotations

import json

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrchestratorSettings(BaseSettings):
    """`LOCKGATE_TOOL_FUNCTIONS` is a JSON object: tool name → Lambda function name or ARN."""

    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="ignore", frozen=True)

    tool_functions: dict[str, str] = Field(default_factory=dict)
    model_id: str = "amazon.nova-lite-v1:0"
    max_steps: int = Field(default=15, ge=1, le=100)
    max_request_chars: int = Field(default=4000, ge=1)

    @field_validator("tool_functions", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
