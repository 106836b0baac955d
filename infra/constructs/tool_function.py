"""One tool contract → one Lambda function with its own role, log group and secret grant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.lambda_role import LambdaRole
from infra.runtime import FUNCTION_ENVIRONMENT
from tools.kit.contract import ToolSpec
from tools.registry import handler_module


def pascal(name: str) -> str:
    """`flight_book` → `FlightBook`: a tool's construct id."""
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass(frozen=True)
class DatabaseAccess:
    """Where a tool that uses the database runs and what it may reach from there.

    A tool that needs no network at all runs in the same subnets (they have no route out),
    reaching nothing from there.
    """

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    database: ec2.IConnectable
    database_port: int
    secrets_endpoint: ec2.IConnectable


@dataclass(frozen=True)
class ToolFunctionProps:
    """Everything a tool function needs besides its contract."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    secret: secretsmanager.ISecret | None
    invoker: iam.IRole
    database: DatabaseAccess
    memory_mb: int
    timeout: Duration
    log_retention: logs.RetentionDays
    environment: Mapping[str, str] = field(default_factory=dict)


class ToolFunction(Construct):
    """A tool's Lambda: least privilege derived from its contract.

    - its own IAM role (no managed policies): write its own log group and, if the contract
      needs the database, read its own secret;
    - its own log group with retention;
    - placed in the VPC, with its own security group, if the contract needs the database;
      that group may reach the database and the Secrets Manager endpoint;
    - placed in the VPC too if the contract needs no network at all (no database, no
      upstream), with a security group of its own that has no rule and that no other group
      admits: outside a VPC a function could reach the internet;
    - outside the VPC otherwise (a tool with an upstream: the VPC has no route out);
    - a resource policy that lets only `props.invoker` (the orchestrator's role) invoke it.
    """

    def __init__(
        self, scope: Construct, id: str, *, spec: ToolSpec, props: ToolFunctionProps
    ) -> None:
        super().__init__(scope, id)
        if spec.needs_database != (props.secret is not None):
            raise ValueError(
                f"{spec.name}: a secret is required exactly when the tool needs the database"
            )
        self.spec = spec
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.security_group: ec2.SecurityGroup | None = None
        statements: list[iam.PolicyStatement] = []
        environment = {
            **FUNCTION_ENVIRONMENT,
            "POWERTOOLS_SERVICE_NAME": spec.name,
            **props.environment,
        }
        if props.secret is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadOwnSecret",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[props.secret.secret_arn],
                )
            )
            environment["LOCKGATE_DB_SECRET_ID"] = props.secret.secret_arn
            self.security_group = self._closed_group(
                props, f"{spec.name}: PostgreSQL and Secrets Manager only"
            )
            self.security_group.connections.allow_to(
                props.database.database,
                ec2.Port.tcp(props.database.database_port),
                f"{spec.name} to PostgreSQL",
            )
            self.security_group.connections.allow_to(
                props.database.secrets_endpoint, ec2.Port.HTTPS, f"{spec.name} to Secrets Manager"
            )
        elif not spec.needs_network:
            self.security_group = self._closed_group(props, f"{spec.name}: no network, no rules")

        self.role = LambdaRole(
            self,
            "Role",
            description=f"Lockgate tool {spec.name}: own logs, own secret if any",
            log_group=self.log_group,
            statements=statements,
            vpc_access=self.security_group is not None,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description[:256],
            runtime=props.runtime,
            architecture=props.architecture,
            code=props.code,
            handler=f"{handler_module(spec.name)}.handler",
            layers=list(props.layers),
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            memory_size=props.memory_mb,
            timeout=props.timeout,
            environment=environment,
            vpc=props.database.vpc if self.security_group else None,
            vpc_subnets=props.database.subnets if self.security_group else None,
            security_groups=[self.security_group] if self.security_group else None,
        )
        self.function.add_permission(
            "OrchestratorOnly",
            principal=iam.ArnPrincipal(props.invoker.role_arn),
            action="lambda:InvokeFunction",
        )

    def _closed_group(self, props: ToolFunctionProps, description: str) -> ec2.SecurityGroup:
        """The function's own security group: no ingress, and no egress until a rule is added
        (CDK writes one placeholder rule that matches no traffic)."""
        return ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.database.vpc,
            description=description,
            allow_all_outbound=False,
        )
