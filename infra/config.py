"""Lockgate's deployment configuration: the `lockgate` object in cdk.json's context.

Only `app.py` reads context; everything else receives these typed values.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# CloudWatch Logs accepts only these retention periods (days).
RetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827]

# Cross-region inference profile ids carry a geography prefix: `eu.amazon.nova-lite-v1:0`.
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|us-gov|jp|au|ca|global)\.")
_MODEL_ID = re.compile(r"^[a-z0-9.-]+\.[a-z0-9.:-]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    """The PostgreSQL instance (RDS for PostgreSQL, see docs/DEPLOY.md for why not Aurora)."""

    instance_type: str = Field(default="t4g.micro", pattern=r"^[a-z0-9]+\.[a-z0-9]+$")
    allocated_storage_gb: int = Field(default=20, ge=20, le=1000)
    max_allocated_storage_gb: int = Field(default=50, ge=20, le=1000)
    multi_az: bool = False
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    deletion_protection: bool = True
    database_name: str = Field(default="lockgate", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_username: str = Field(default="lockgate_admin", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    seed_demo_data: bool = False


class FunctionConfig(_Strict):
    """Size and time limit of one kind of Lambda function."""

    memory_mb: int = Field(ge=128, le=10240)
    timeout_seconds: int = Field(ge=1, le=900)


class ApiConfig(_Strict):
    """The REST API and its Cognito user pool."""

    stage_name: str = Field(default="v1", pattern=r"^[A-Za-z0-9_]+$")
    throttle_rate_limit: float = Field(default=10, gt=0)
    throttle_burst_limit: int = Field(default=20, ge=1)
    require_mfa: bool = True
    # API Gateway writes its logs through one role per account and region. Turn this off when
    # another stack already sets that role, so Lockgate does not overwrite it.
    manage_account_logging_role: bool = True


class ModelsConfig(_Strict):
    """The Bedrock models the orchestrator may call: nothing else is granted."""

    router_model_id: str = "amazon.nova-lite-v1:0"
    extra_model_ids: tuple[str, ...] = ()
    # Regions an inference profile (`eu.`, `us.`, ... ids) may route to; empty = the stack's.
    inference_regions: tuple[str, ...] = ()

    @field_validator("router_model_id", "extra_model_ids", mode="after")
    @classmethod
    def _model_ids(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for model_id in (value,) if isinstance(value, str) else value:
            if not _MODEL_ID.match(model_id):
                raise ValueError(f"{model_id!r} is not a Bedrock model id")
        return value

    @field_validator("inference_regions", mode="after")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for region in value:
            if not _REGION.match(region):
                raise ValueError(f"{region!r} is not an AWS region")
        return value

    @property
    def model_ids(self) -> tuple[str, ...]:
        """Every model id the orchestrator may invoke, router first, without duplicates."""
        return tuple(dict.fromkeys((self.router_model_id, *self.extra_model_ids)))


def is_inference_profile(model_id: str) -> bool:
    """True for a cross-region inference profile id such as `eu.amazon.nova-lite-v1:0`."""
    return bool(_PROFILE_PREFIX.match(model_id))


def foundation_model_id(model_id: str) -> str:
    """The foundation model behind a model or inference profile id."""
    return _PROFILE_PREFIX.sub("", model_id, count=1)


class LockgateConfig(_Strict):
    """Everything `cdk deploy` can be told about Lockgate, with working defaults."""

    stack_prefix: str = Field(default="Lockgate", pattern=r"^[A-Za-z][A-Za-z0-9]{0,30}$")
    log_retention_days: RetentionDays = 30
    # Base URL of the HTTP API a tool calls (`LOCKGATE_UPSTREAM_URL`), by tool name.
    tool_upstream_urls: dict[str, Annotated[str, Field(pattern=r"^https://[^\s]+$")]] = Field(
        default_factory=dict
    )
    max_steps: Annotated[int, Field(ge=1, le=100)] = 15
    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    models: ModelsConfig = ModelsConfig()
    tool_function: FunctionConfig = FunctionConfig(memory_mb=256, timeout_seconds=15)
    # API Gateway's integration limit is 29 s: the synchronous session must end before it.
    orchestrator_function: FunctionConfig = FunctionConfig(memory_mb=512, timeout_seconds=29)
    migration_function: FunctionConfig = FunctionConfig(memory_mb=256, timeout_seconds=300)
