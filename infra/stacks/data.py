"""The stateful stack: VPC, PostgreSQL, one secret per tool and per model provider, and the
migrations.

Termination protection is on and the stateful resources have pinned logical ids, so
refactoring constructs can never replace the database or a tool's secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    CfnOutput,
    CfnResource,
    CustomResource,
    Duration,
    RemovalPolicy,
    SecretValue,
    Stack,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from db.migrate import MIGRATIONS
from infra.config import DatabaseConfig, FunctionConfig
from infra.constructs.lambda_role import LambdaRole
from infra.constructs.layers import layer_versions
from infra.constructs.tool_function import DatabaseAccess, pascal
from infra.runtime import FUNCTION_ENVIRONMENT
from orchestrator.settings import PROVIDER_KEY_PLACEHOLDER
from tools.kit.contract import ToolSpec

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class DataStackProps:
    """What the data stack is built from."""

    specs: Sequence[ToolSpec]
    database: DatabaseConfig
    migration_function: FunctionConfig
    migration_code: lambda_.Code
    layers: Sequence[Callable[[], lambda_.Code]]
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    log_retention: logs.RetentionDays
    # `openai`, `anthropic`: the providers the configured models use, one key secret each.
    model_providers: Sequence[str] = ()


def pin(construct: IConstruct, logical_id: str) -> None:
    """Fix a resource's logical id so a refactor cannot replace it."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    resource.override_logical_id(logical_id)


def contracts_fingerprint(specs: Sequence[ToolSpec]) -> str:
    """Changes whenever a migration file or a tool's database declaration changes."""
    h = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    declared = {
        s.db_role: {
            "writes": s.writes,
            "privileges": {t: sorted(p) for t, p in s.db_privileges.items()},
        }
        for s in specs
    }
    h.update(json.dumps(declared, sort_keys=True).encode())
    return h.hexdigest()


class DataStack(Stack):
    """VPC (isolated subnets, no NAT), RDS for PostgreSQL, tool and model-provider secrets,
    migrations."""

    def __init__(
        self, scope: Construct, id: str, *, props: DataStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description, termination_protection=True)
        config = props.database

        # No NAT gateway and no internet route: the database and the tools that use it reach
        # AWS only through VPC endpoints.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            # Restricting the default group needs a custom-resource Lambda; nothing uses it.
            restrict_default_security_group=False,
        )
        pin(self.vpc, "Vpc")
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogs",
                    retention=props.log_retention,
                    removal_policy=RemovalPolicy.DESTROY,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.secrets_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManager",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.subnets,
            private_dns_enabled=True,
            # Closed by default: each client's security group opens its own way in.
            open=False,
        )
        # The migration custom resource answers CloudFormation through a pre-signed S3 URL.
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
        )
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="CloudFormationResponsesOnly",
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=["arn:aws:s3:::cloudformation-custom-resource-response-*/*"],
            )
        )

        self.database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_18),
            instance_type=ec2.InstanceType(config.instance_type),
            vpc=self.vpc,
            vpc_subnets=self.subnets,
            port=POSTGRES_PORT,
            database_name=config.database_name,
            credentials=rds.Credentials.from_generated_secret(config.master_username),
            storage_type=rds.StorageType.GP3,
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_encrypted=True,
            publicly_accessible=False,
            multi_az=config.multi_az,
            backup_retention=Duration.days(config.backup_retention_days),
            deletion_protection=config.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
        )
        pin(self.database, "Database")
        pin(self.database.node.find_child("SubnetGroup"), "DatabaseSubnetGroup")
        pin(self.database.node.find_child("SecurityGroup"), "DatabaseSecurityGroup")
        master_secret = self.database.secret
        if master_secret is None:
            raise RuntimeError("the database must have a generated master secret")
        pin(self.database.node.find_child("Secret"), "DatabaseMasterSecret")
        pin(master_secret, "DatabaseMasterSecretAttachment")
        self._acknowledge_database(config)

        # One secret per tool that needs the database, in the RDS shape the tool kit reads (host, port, dbname,
        # username, password). The attachment fills in host and port from the instance.
        self.tool_secrets: dict[str, secretsmanager.ISecret] = {}
        for spec in (s for s in props.specs if s.needs_database):
            secret = rds.DatabaseSecret(
                self,
                f"{pascal(spec.name)}Secret",
                username=spec.db_role,
                dbname=config.database_name,
            )
            pin(secret, f"ToolSecret{pascal(spec.name)}")
            attached = secret.attach(self.database)
            pin(attached, f"ToolSecret{pascal(spec.name)}Attachment")
            Validations.of(secret).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason=(
                        f"{spec.db_role}'s password is set by the migrations from this secret on "
                        "every deploy; rotation (a rotation Lambda in the VPC) is a follow-up. Only "
                        f"the {spec.name} function's role can read it."
                    ),
                )
            )
            self.tool_secrets[spec.name] = attached

        self.provider_secrets = self._provider_secrets(props.model_providers)
        self.database_access = DatabaseAccess(
            vpc=self.vpc,
            subnets=self.subnets,
            database=self.database,
            database_port=POSTGRES_PORT,
            secrets_endpoint=self.secrets_endpoint,
        )
        self._migrations(props, master_secret)

    def _provider_secrets(self, providers: Sequence[str]) -> dict[str, secretsmanager.ISecret]:
        """One secret per model provider, for its API key. The stack writes only a placeholder
        (the worker refuses it); the operator puts the key with `aws secretsmanager
        put-secret-value`, and later deploys leave it alone while the placeholder is unchanged."""
        secrets: dict[str, secretsmanager.ISecret] = {}
        for provider in providers:
            secret = secretsmanager.Secret(
                self,
                f"{pascal(provider)}ApiKey",
                description=(
                    f"Lockgate: the {provider} API key the worker sends (put it with aws "
                    "secretsmanager put-secret-value; only the worker's role is granted read)"
                ),
                # Not a secret: the text the worker recognizes as "no key put yet".
                secret_string_value=SecretValue.unsafe_plain_text(PROVIDER_KEY_PLACEHOLDER),
            )
            pin(secret, f"ModelProviderKey{pascal(provider)}")
            Validations.of(secret).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason=(
                        f"A {provider} API key is issued by {provider}, not by AWS: Secrets "
                        "Manager has no way to create or revoke one, so the operator rotates it "
                        "at the provider and puts the new key here. Only the worker's role can "
                        "read it."
                    ),
                )
            )
            # The operator's handle on it: `cdk deploy` prints it, and the README's command reads it.
            CfnOutput(self, f"{pascal(provider)}KeySecretArn", value=secret.secret_arn)
            secrets[provider] = secret
        return secrets

    def _migrations(self, props: DataStackProps, master_secret: secretsmanager.ISecret) -> None:
        config = props.migration_function
        log_group = logs.LogGroup(
            self,
            "MigrationsLogs",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Isolated subnets have no route out: outbound traffic can only reach the VPC, the
        # Secrets Manager endpoint and the S3 gateway endpoint (restricted to CloudFormation
        # response objects), so the group does not list destinations one by one.
        security_group = ec2.SecurityGroup(
            self,
            "MigrationsSecurityGroup",
            vpc=self.vpc,
            description="Migrations: PostgreSQL, Secrets Manager, CloudFormation response",
            allow_all_outbound=True,
        )
        self.database.connections.allow_default_port_from(security_group, "migrations")
        self.secrets_endpoint.connections.allow_default_port_from(security_group, "migrations")
        secret_arns = [
            master_secret.secret_arn,
            *(s.secret_arn for s in self.tool_secrets.values()),
        ]
        role = LambdaRole(
            self,
            "MigrationsRole",
            description="Lockgate migrations: master secret and tool secrets, own logs",
            log_group=log_group,
            statements=[
                iam.PolicyStatement(
                    sid="ReadDatabaseSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=secret_arns,
                )
            ],
            vpc_access=True,
        )
        layers = layer_versions(
            self, "MigrationsLayer", props.layers, props.runtime, props.architecture
        )
        function = lambda_.Function(
            self,
            "Migrations",
            description="Applies db/migrations and syncs one PostgreSQL role per tool contract",
            runtime=props.runtime,
            architecture=props.architecture,
            code=props.migration_code,
            handler="db.handler.handler",
            layers=layers,
            role=role.without_policy_updates(),
            log_group=log_group,
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            vpc=self.vpc,
            vpc_subnets=self.subnets,
            security_groups=[security_group],
            environment={**FUNCTION_ENVIRONMENT, "POWERTOOLS_SERVICE_NAME": "lockgate-migrations"},
        )
        resource = CustomResource(
            self,
            "MigrationRun",
            service_token=function.function_arn,
            resource_type="Custom::LockgateMigrations",
            service_timeout=Duration.seconds(config.timeout_seconds + 60),
            properties={
                "Fingerprint": contracts_fingerprint(props.specs),
                "MasterSecretArn": master_secret.secret_arn,
                "ToolSecretArns": {
                    spec.db_role: self.tool_secrets[spec.name].secret_arn
                    for spec in props.specs
                    if spec.needs_database
                },
                "Seed": "true" if props.database.seed_demo_data else "false",
            },
        )
        # The function must reach the database, its secrets and S3 before it runs, and while
        # the stack is deleted it must still be able to answer.
        resource.node.add_dependency(
            self.database.node.default_child, self.secrets_endpoint, self.s3_endpoint
        )

    def _acknowledge_database(self, config: DatabaseConfig) -> None:
        database = Validations.of(self.database)
        database.acknowledge(
            Acknowledgment(
                id="AwsSolutions-RDS11",
                reason=(
                    "The default port is kept: the instance has no public address, sits in "
                    "isolated subnets, and its security group admits only the tools and migrations."
                ),
            ),
        )
        if not config.multi_az:
            database.acknowledge(
                Acknowledgment(
                    id="AwsSolutions-RDS3",
                    reason=(
                        "Single-AZ by configuration (cdk.json lockgate.database.multi_az) to keep "
                        "the idle cost low; backups and snapshots on delete protect the data."
                    ),
                )
            )
        if not config.deletion_protection:
            database.acknowledge(
                Acknowledgment(
                    id="AwsSolutions-RDS10",
                    reason="Deletion protection turned off in cdk.json (lockgate.database.deletion_protection).",
                )
            )
        Validations.of(self.database.node.find_child("Secret")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    "The master password is used only by the migrations on deploy; rotation (a "
                    "rotation Lambda in the VPC) is a follow-up."
                ),
            )
        )
