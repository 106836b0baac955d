"""The one place the stacks are wired together (used by app.py and the infra tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from aws_cdk import App, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks

from infra.bundling import (
    AUTH_PACKAGES,
    CORE_PACKAGES,
    MIGRATION_SOURCES,
    NUMERIC_PACKAGES,
    ORCHESTRATOR_PACKAGES,
    ORCHESTRATOR_SOURCES,
    POSTGRES_PACKAGES,
    PROVIDER_HTTP_PACKAGES,
    PROVIDER_PACKAGES,
    TOOL_POSTGRES_PACKAGES,
    Bundler,
    LambdaPlatform,
    tool_sources,
)
from infra.config import LockgateConfig
from infra.constructs.tool_function import pascal
from infra.stacks.api import WORKER_SERVICE, ApiStack, ApiStackProps
from infra.stacks.data import DataStack, DataStackProps
from infra.stacks.observability import ObservabilityStack, ObservabilityStackProps
from infra.stacks.sessions import SessionsStack, SessionsStackProps
from infra.stacks.tools import ToolsStack, ToolsStackProps
from tools.kit.contract import ToolSpec
from tools.python_exec.contract import SPEC as PYTHON_EXEC
from tools.python_exec.sandbox import SandboxSettings
from tools.registry import CONTRACTS

# The newest Python runtime aws-cdk-lib knows, on Graviton.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PLATFORM = LambdaPlatform(runtime=RUNTIME, architecture=ARCHITECTURE)

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
}


@dataclass(frozen=True)
class Lockgate:
    """The deployed application: five stacks, deployed in this order."""

    data: DataStack
    tools: ToolsStack
    sessions: SessionsStack
    api: ApiStack
    observability: ObservabilityStack

    @property
    def stacks(self) -> tuple[Stack, ...]:
        """Every stack, in deployment order."""
        return (self.data, self.tools, self.sessions, self.api, self.observability)


def build(
    app: App,
    config: LockgateConfig,
    specs: Sequence[ToolSpec] = CONTRACTS,
    *,
    bundler: Bundler | None = None,
) -> Lockgate:
    """Create Lockgate's stacks for these tool contracts (sources read by `bundler`, by
    default from this repository)."""
    declared = {s.name: s.upstream for s in specs}
    for setting in ("tool_upstream_urls", "tool_function_overrides"):
        unknown = set(getattr(config, setting)) - set(declared)
        if unknown:
            raise ValueError(f"{setting} names unknown tools: {sorted(unknown)}")
    undeclared = sorted(n for n in config.tool_upstream_urls if declared[n] is None)
    if undeclared:
        raise ValueError(f"tool_upstream_urls names tools that declare no upstream: {undeclared}")
    environments: dict[str, dict[str, str]] = {
        name: {"LOCKGATE_UPSTREAM_URL": url} for name, url in config.tool_upstream_urls.items()
    }
    if PYTHON_EXEC.name in declared:
        environments[PYTHON_EXEC.name] = python_exec_environment(config)
    bundler = bundler or Bundler(PLATFORM)
    # A layer version belongs to one stack, so each stack builds its own from the same asset.
    core = partial(bundler.layer_code, CORE_PACKAGES)
    postgres = partial(bundler.layer_code, POSTGRES_PACKAGES)
    tool_postgres = partial(bundler.layer_code, TOOL_POSTGRES_PACKAGES)
    tool_layers = (
        {PYTHON_EXEC.name: (partial(bundler.layer_code, NUMERIC_PACKAGES),)}
        if config.python_exec.numeric and PYTHON_EXEC.name in declared
        else {}
    )
    retention = _RETENTION[config.log_retention_days]
    prefix = config.stack_prefix
    # Each provider the models use: its SDK layer (after the shared HTTP one) for the worker.
    providers = config.models.providers
    provider_layers = {
        **(
            {"ProviderHttp": partial(bundler.layer_code, PROVIDER_HTTP_PACKAGES)}
            if providers
            else {}
        ),
        **{f"{pascal(p)}Sdk": partial(bundler.layer_code, PROVIDER_PACKAGES[p]) for p in providers},
    }

    data = DataStack(
        app,
        f"{prefix}Data",
        description="Lockgate data: VPC, PostgreSQL, tool secrets, migrations (stateful)",
        props=DataStackProps(
            specs=specs,
            database=config.database,
            migration_function=config.migration_function,
            migration_code=bundler.function_code(MIGRATION_SOURCES),
            layers=(core, postgres),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            log_retention=retention,
            model_providers=providers,
        ),
    )
    tools = ToolsStack(
        app,
        f"{prefix}Tools",
        description="Lockgate tools: one Lambda, role and log group per tool contract",
        props=ToolsStackProps(
            specs=specs,
            tool_code=lambda spec: bundler.function_code(tool_sources(spec.name)),
            layers=(core,),
            database_layers=(tool_postgres,),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            secrets=data.tool_secrets,
            database=data.database_access,
            function=config.tool_function,
            log_retention=retention,
            functions=config.tool_function_overrides,
            environments=environments,
            tool_layers=tool_layers,
        ),
    )
    sessions = SessionsStack(
        app,
        f"{prefix}Sessions",
        description="Lockgate sessions: DynamoDB table, sessions queue and its DLQ (stateful)",
        props=SessionsStackProps(
            queue=config.queue,
            worker_timeout_seconds=config.worker.timeout_seconds,
            dead_letter_timeout_seconds=config.api_function.timeout_seconds,
        ),
    )
    api = ApiStack(
        app,
        f"{prefix}Api",
        description="Lockgate API: Cognito, REST and WebSocket APIs, api, worker, DLQ functions",
        props=ApiStackProps(
            specs=specs,
            orchestrator_role=tools.orchestrator_role,
            tool_functions={name: tool.function for name, tool in tools.tools.items()},
            table=sessions.table,
            queue=sessions.queue,
            dead_letter_queue=sessions.dead_letter_queue,
            code=bundler.function_code(ORCHESTRATOR_SOURCES, ORCHESTRATOR_PACKAGES),
            layers=(core,),
            auth_layer=partial(bundler.layer_code, AUTH_PACKAGES),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            api=config.api,
            models=config.models,
            function=config.api_function,
            worker=config.worker,
            max_steps=config.max_steps,
            log_retention=retention,
            provider_layers=provider_layers,
            provider_secrets=data.provider_secrets,
        ),
    )
    observability = ObservabilityStack(
        app,
        f"{prefix}Observability",
        description="Lockgate observability: dashboard, alarms and their SNS topic",
        props=ObservabilityStackProps(
            functions={
                **api.functions,
                **{pascal(name): tool.function for name, tool in tools.tools.items()},
            },
            worker=api.worker,
            queue=sessions.queue,
            dead_letter_queue=sessions.dead_letter_queue,
            api_stage=api.api.deployment_stage,
            metrics_service=WORKER_SERVICE,
            alarms=config.alarms,
            dashboard_name=prefix,
        ),
    )
    return Lockgate(data=data, tools=tools, sessions=sessions, api=api, observability=observability)


# What python_exec's function needs besides its child's memory limit: its own interpreter and
# the child's, before the program adds anything (about 35 MB each); and time, after the
# sandbox's wall clock, to answer.
PYTHON_EXEC_HEADROOM_MB = 256
PYTHON_EXEC_ANSWER_SECONDS = 2


def python_exec_environment(config: LockgateConfig) -> dict[str, str]:
    """python_exec's sandbox limits as its function's environment, once they are checked
    against that function's size and time limit."""
    environment = config.python_exec.environment()
    sandbox = SandboxSettings.from_env(environment)
    function = config.tool_function_overrides.get(PYTHON_EXEC.name, config.tool_function)
    if function.memory_mb < sandbox.memory_mb + PYTHON_EXEC_HEADROOM_MB:
        raise ValueError(
            f"{PYTHON_EXEC.name}: {function.memory_mb} MB cannot hold a {sandbox.memory_mb} MiB "
            f"program; give the function at least {PYTHON_EXEC_HEADROOM_MB} MB more"
        )
    if function.timeout_seconds < sandbox.wall_seconds + PYTHON_EXEC_ANSWER_SECONDS:
        raise ValueError(
            f"{PYTHON_EXEC.name}: a {function.timeout_seconds} s timeout ends the function before "
            f"the sandbox's {sandbox.wall_seconds:g} s wall clock ends a program"
        )
    return environment


def add_checks(app: App) -> None:
    """Run cdk-nag's AWS Solutions rules on every synth; a finding fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
