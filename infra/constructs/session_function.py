"""A Lambda function built from the orchestrator asset: the API, worker, dead-letter and
WebSocket entry points all share one code asset and the same layers, and differ only in
handler, environment and the statements their role holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import FunctionConfig
from infra.constructs.lambda_role import LambdaRole
from infra.runtime import FUNCTION_ENVIRONMENT

# Powertools Metrics (EMF) namespace of every orchestrator function (see the dashboard).
METRICS_NAMESPACE = "Lockgate"


@dataclass(frozen=True)
class OrchestratorAsset:
    """What every function built from the orchestrator package shares."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    log_retention: logs.RetentionDays


@dataclass(frozen=True)
class SessionFunctionProps:
    """One entry point: its handler, size, environment and exactly what it may do.

    `role` is None for a function with a role of its own (created here, holding only
    `statements` and its log group). The worker passes the orchestrator's role instead, the
    one each tool's resource policy trusts; its statements are then attached to that role as a
    policy the function waits for.
    """

    handler: str
    description: str
    service: str
    function: FunctionConfig
    environment: Mapping[str, str]
    statements: Sequence[iam.PolicyStatement] = ()
    role: iam.Role | None = None
    extra_layers: Sequence[lambda_.ILayerVersion] = ()
    reserved_concurrency: int | None = None


class SessionFunction(Construct):
    """An orchestrator entry point: own log group, least-privilege statements, no VPC."""

    def __init__(
        self, scope: Construct, id: str, *, asset: OrchestratorAsset, props: SessionFunctionProps
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=asset.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.policy: iam.Policy | None = None
        if props.role is None:
            self.role: iam.Role = LambdaRole(
                self,
                "Role",
                description=f"Lockgate {props.service}: {props.description}"[:1000],
                log_group=self.log_group,
                statements=props.statements,
            )
        else:
            self.role = props.role
            self.policy = iam.Policy(
                self,
                "Runtime",
                roles=[props.role],
                statements=[
                    iam.PolicyStatement(
                        sid="WriteOwnLogs",
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[self.log_group.log_group_arn],
                    ),
                    *props.statements,
                ],
            )
        self.function = lambda_.Function(
            self,
            "Function",
            description=props.description[:256],
            runtime=asset.runtime,
            architecture=asset.architecture,
            code=asset.code,
            handler=props.handler,
            layers=[*asset.layers, *props.extra_layers],
            # Every grant is declared above; nothing (an event source, an integration) may add
            # statements behind our back.
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            memory_size=props.function.memory_mb,
            timeout=Duration.seconds(props.function.timeout_seconds),
            reserved_concurrent_executions=props.reserved_concurrency,
            environment={
                **FUNCTION_ENVIRONMENT,
                "POWERTOOLS_SERVICE_NAME": props.service,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **props.environment,
            },
        )
        if self.policy is not None:
            # The role must hold the statements before an event source mapping is created.
            self.function.node.add_dependency(self.policy)
