"""Lockgate's deployment configuration: the `lockgate` object in cdk.json's context.

Only `app.py` reads context; everything else receives these typed values.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING
from orchestrator.models.specs import UnknownModel, parse_spec
from orchestrator.pricing import Price

# CloudWatch Logs accepts only these retention periods (days).
RetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827]

# Cross-region inference profile ids carry a geography prefix: `eu.amazon.nova-lite-v1:0`.
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|us-gov|jp|au|ca|global)\.")
_MODEL_ID = re.compile(r"^[a-z0-9.-]+\.[a-z0-9.:-]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


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


class PythonExecConfig(_Strict):
    """The limits of one program that `python_exec` runs (its child process, not its function)."""

    program_cpu_seconds: int = Field(default=5, ge=1, le=60)
    program_memory_mb: int = Field(default=128, ge=16, le=4096)
    # numpy for the programs, from a layer given to python_exec only.
    numeric: bool = False

    def environment(self) -> dict[str, str]:
        """What the function reads (`tools.python_exec.sandbox.SandboxSettings.from_env`)."""
        return {
            "LOCKGATE_PYTHON_CPU_SECONDS": str(self.program_cpu_seconds),
            "LOCKGATE_PYTHON_MEMORY_MB": str(self.program_memory_mb),
            "LOCKGATE_PYTHON_NUMERIC": "true" if self.numeric else "false",
        }


class WorkerConfig(FunctionConfig):
    """The worker: the orchestrator loop, fed by the sessions queue."""

    memory_mb: int = Field(default=512, ge=128, le=10240)
    # A long session re-enqueues itself before this limit and resumes from its checkpoint.
    timeout_seconds: int = Field(default=300, ge=30, le=900)
    # Messages per invocation; failed ones are reported individually and redelivered.
    batch_size: int = Field(default=1, ge=1, le=5)
    # Caps concurrent sessions (and so Bedrock and tool load); None = the account's pool. The
    # queue's event source is capped to the same number, so SQS never hands the worker more
    # than it may run (a throttled message would count towards the dead-letter queue).
    reserved_concurrency: int | None = Field(default=None, ge=2, le=1000)


class QueueConfig(_Strict):
    """The sessions queue and its dead-letter queue."""

    # Deliveries of one message before it moves to the dead-letter queue.
    max_receive_count: int = Field(default=3, ge=1, le=1000)


class AlarmsConfig(_Strict):
    """Alarm thresholds and who hears about them."""

    cost_per_hour_usd: float = Field(default=1.0, gt=0)
    worker_error_rate_percent: float = Field(default=5.0, gt=0, le=100)
    # Subscribed to the alarm topic (the address confirms by mail); None = no subscription.
    email: str | None = Field(default=None, pattern=_EMAIL)


class ApiConfig(_Strict):
    """The REST API, the WebSocket API and the Cognito user pool."""

    stage_name: str = Field(default="v1", pattern=r"^[A-Za-z0-9_]+$")
    throttle_rate_limit: float = Field(default=10, gt=0)
    throttle_burst_limit: int = Field(default=20, ge=1)
    require_mfa: bool = True
    # API Gateway writes its logs through one role per account and region. Turn this off when
    # another stack already sets that role, so Lockgate does not overwrite it.
    manage_account_logging_role: bool = True


# Providers reached through their own SDK (a layer each) and an API key in Secrets Manager.
KeyedProvider = Literal["openai", "anthropic"]
# A model name as an OpenAI-compatible server or Anthropic spells it: `gpt-4.1-mini`,
# `claude-sonnet-4-5`, `meta-llama/Llama-3.1-8B-Instruct`, `qwen2.5:7b`.
_PROVIDER_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,150}$")


def _check_spec(spec: str) -> str:
    """A model spec the worker can build: `bedrock:ID` or a bare Bedrock id, `openai:MODEL`,
    `anthropic:MODEL`."""
    try:
        provider, model = parse_spec(spec)
    except UnknownModel as exc:
        raise ValueError(str(exc)) from exc
    if provider == "bedrock" and not _MODEL_ID.match(model):
        raise ValueError(f"{spec!r} is not a Bedrock model id")
    if provider != "bedrock" and not _PROVIDER_MODEL.match(model):
        raise ValueError(f"{spec!r}: {model!r} is not a model name")
    return spec


class ModelsConfig(_Strict):
    """The models the worker may call: Bedrock ids (nothing else is granted) and `openai:` /
    `anthropic:` specs (each such provider gets its SDK layer and a key secret)."""

    router_model_id: str = "amazon.nova-lite-v1:0"
    # Writes the final answer (`LOCKGATE_SYNTHESIZER_MODEL_ID`); None = the router does.
    synthesizer: str | None = None
    # Router models a caller may choose per session (`options.model`), besides the default.
    allowed: tuple[str, ...] = ()
    # Other Bedrock models the worker may invoke.
    extra_model_ids: tuple[str, ...] = ()
    # Bedrock prompt caching of the instructions and tool catalog (models that support it).
    prompt_cache: bool = False
    # Regions an inference profile (`eu.`, `us.`, ... ids) may route to; empty = the stack's.
    inference_regions: tuple[str, ...] = ()
    # The worker's `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL`: an OpenAI-compatible server (or a
    # gateway) instead of the provider's own API. Only for a provider the models above use.
    base_urls: dict[KeyedProvider, Annotated[str, Field(pattern=r"^https://[^\s]+$")]] = Field(
        default_factory=dict
    )
    # USD per million tokens by model spec, over the defaults (`LOCKGATE_PRICES`): your
    # region's or contract's prices, or zero for a model on your own server.
    prices: dict[str, Price] = Field(default_factory=dict)

    @field_validator("router_model_id", "synthesizer", "allowed", mode="after")
    @classmethod
    def _specs(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for spec in () if value is None else (value,) if isinstance(value, str) else value:
            _check_spec(spec)
        return value

    @field_validator("extra_model_ids", mode="after")
    @classmethod
    def _model_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for model_id in value:
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

    @model_validator(mode="after")
    def _base_urls_of_used_providers(self) -> Self:
        unused = sorted(set(self.base_urls) - set(self.providers))
        if unused:
            raise ValueError(f"base_urls names providers no configured model uses: {unused}")
        return self

    @property
    def choosable(self) -> tuple[str, ...]:
        """The models a caller may pick (`LOCKGATE_ALLOWED_MODELS`): the default router first."""
        return tuple(dict.fromkeys((self.router_model_id, *self.allowed)))

    @property
    def specs(self) -> tuple[str, ...]:
        """Every model the worker may build, router first, without duplicates."""
        synthesizer = (self.synthesizer,) if self.synthesizer else ()
        return tuple(dict.fromkeys((*self.choosable, *synthesizer)))

    @property
    def model_ids(self) -> tuple[str, ...]:
        """Every Bedrock model id the worker may invoke, router first, without duplicates."""
        bedrock = (
            model for provider, model in map(parse_spec, self.specs) if provider == "bedrock"
        )
        return tuple(dict.fromkeys((*bedrock, *self.extra_model_ids)))

    @property
    def providers(self) -> tuple[KeyedProvider, ...]:
        """The providers besides Bedrock that the models use (openai first): each gets its SDK layer
        and a key secret."""
        used = {provider for provider, _ in map(parse_spec, self.specs)}
        return tuple(p for p in get_args(KeyedProvider) if p in used)


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
    # Base URL of the HTTP API a tool calls (`LOCKGATE_UPSTREAM_URL`), by tool name; only for
    # tools whose contract declares an `upstream`.
    tool_upstream_urls: dict[str, Annotated[str, Field(pattern=r"^https://[^\s]+$")]] = Field(
        default_factory=dict
    )
    max_steps: Annotated[int, Field(ge=1, le=MAX_STEPS_CEILING)] = DEFAULT_MAX_STEPS
    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    models: ModelsConfig = ModelsConfig()
    queue: QueueConfig = QueueConfig()
    worker: WorkerConfig = WorkerConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    tool_function: FunctionConfig = FunctionConfig(memory_mb=256, timeout_seconds=15)
    # Tools whose function is sized apart from `tool_function`, by tool name. python_exec
    # starts a child interpreter per call, which Lambda gives CPU in proportion to memory: at
    # 1769 MB a function has one whole vCPU, so a program's CPU-seconds limit is reached
    # before the sandbox's wall clock (CPU limit + 3 s) ends it.
    tool_function_overrides: dict[str, FunctionConfig] = Field(
        default_factory=lambda: {"python_exec": FunctionConfig(memory_mb=1769, timeout_seconds=15)}
    )
    python_exec: PythonExecConfig = PythonExecConfig()
    # The API, WebSocket and dead-letter functions: short request/response work, except that
    # POST /sessions with `Prefer: wait=N` waits up to 25 s for the session to finish, within
    # API Gateway's 29 s integration limit.
    api_function: FunctionConfig = FunctionConfig(memory_mb=512, timeout_seconds=29)
    migration_function: FunctionConfig = FunctionConfig(memory_mb=256, timeout_seconds=300)
