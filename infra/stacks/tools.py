"""The stateless tools stack: one ToolFunction per contract, and the one role that may call them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import FunctionConfig
from infra.constructs.layers import layer_versions
from infra.constructs.tool_function import DatabaseAccess, ToolFunction, ToolFunctionProps, pascal
from tools.kit.contract import ToolSpec


@dataclass(frozen=True)
class ToolsStackProps:
    """What the tools stack is built from: the registry and the data stack's outputs."""

    specs: Sequence[ToolSpec]
    tool_code: Callable[[ToolSpec], lambda_.Code]
    layers: Sequence[Callable[[], lambda_.Code]]
    database_layers: Sequence[Callable[[], lambda_.Code]]  # only for tools that use PostgreSQL
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    secrets: Mapping[str, secretsmanager.ISecret]
    database: DatabaseAccess
    function: FunctionConfig
    log_retention: logs.RetentionDays
    # By tool name, for the tools named: a size of their own, environment variables (an
    # upstream's URL, a sandbox's limits) and layers of their own.
    functions: Mapping[str, FunctionConfig] = field(default_factory=dict)
    environments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tool_layers: Mapping[str, Sequence[Callable[[], lambda_.Code]]] = field(default_factory=dict)


class ToolsStack(Stack):
    """Tool functions, plus the orchestrator's role: the only principal allowed to invoke them.

    The role lives here, not in the API stack, so that each tool's resource policy can name it
    without a reference cycle. The API stack's worker runs with it and adds its own logs,
    models, table, queue and WebSocket grants.
    """

    def __init__(
        self, scope: Construct, id: str, *, props: ToolsStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description)
        self.orchestrator_role = iam.Role(
            self,
            "OrchestratorRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Lockgate orchestrator (the worker): invokes the registered tools and models",
        )
        layers = layer_versions(self, "Layer", props.layers, props.runtime, props.architecture)
        database_layers = layer_versions(
            self, "DatabaseLayer", props.database_layers, props.runtime, props.architecture
        )
        self.tools: dict[str, ToolFunction] = {}
        for spec in props.specs:
            own_layers = layer_versions(
                self,
                f"{pascal(spec.name)}Layer",
                props.tool_layers.get(spec.name, ()),
                props.runtime,
                props.architecture,
            )
            shared = [*layers, *database_layers] if spec.needs_database else layers
            function = props.functions.get(spec.name, props.function)
            self.tools[spec.name] = ToolFunction(
                self,
                pascal(spec.name),
                spec=spec,
                props=ToolFunctionProps(
                    code=props.tool_code(spec),
                    layers=[*shared, *own_layers],
                    runtime=props.runtime,
                    architecture=props.architecture,
                    secret=props.secrets.get(spec.name),
                    invoker=self.orchestrator_role,
                    database=props.database,
                    memory_mb=function.memory_mb,
                    timeout=Duration.seconds(function.timeout_seconds),
                    log_retention=props.log_retention,
                    environment=props.environments.get(spec.name, {}),
                ),
            )
        iam.Policy(
            self,
            "OrchestratorInvokesTools",
            roles=[self.orchestrator_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeRegisteredTools",
                    actions=["lambda:InvokeFunction"],
                    resources=[t.function.function_arn for t in self.tools.values()],
                )
            ],
        )
