"""What each stack promises, read from the synthesized templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template
from cfn_model import Assembly
from pydantic import Field

from infra.config import LockgateConfig
from infra.constructs.tool_function import DatabaseAccess, ToolFunction, ToolFunctionProps, pascal
from infra.runtime import FUNCTION_ENVIRONMENT
from infra.stacks.api import (
    API_HANDLER,
    SESSION_OPTIONS_SCHEMA,
    SESSION_REQUEST_SCHEMA,
    WORKER_HANDLER,
)
from infra.wiring import ARCHITECTURE, RUNTIME, Lockgate, build
from tools.kit.contract import StrictInput, ToolOutput, ToolSpec
from tools.registry import CONTRACTS


def test_runtime_is_the_newest_python_on_arm64(assembly: Assembly) -> None:
    newest = max(
        (getattr(lambda_.Runtime, n) for n in dir(lambda_.Runtime) if n.startswith("PYTHON_3_")),
        key=lambda r: tuple(int(x) for x in r.name.removeprefix("python").split(".")),
    )
    assert RUNTIME.name == newest.name
    assert ARCHITECTURE.name == "arm64"
    for _, function in assembly.all_resources("AWS::Lambda::Function"):
        assert function["Properties"]["Runtime"] == newest.name
        assert function["Properties"]["Architectures"] == ["arm64"]


def test_every_function_skips_the_pydantic_plugin_search(assembly: Assembly) -> None:
    functions = list(assembly.all_resources("AWS::Lambda::Function"))
    assert functions
    for _, function in functions:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables.items() >= FUNCTION_ENVIRONMENT.items()


def test_every_function_has_its_own_log_group_with_retention(assembly: Assembly) -> None:
    seen = set()
    for (stack, _), function in assembly.all_resources("AWS::Lambda::Function"):
        group = assembly.target(stack, function["Properties"]["LoggingConfig"]["LogGroup"])
        assert group is not None
        assert "RetentionInDays" in assembly.resources(group[0])[group[1]]["Properties"]
        seen.add(group)
    assert len(seen) == len(list(assembly.all_resources("AWS::Lambda::Function")))


def test_database_is_private_encrypted_and_backed_up(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    data = templates[lockgate.data.stack_name]
    data.has_resource(
        "AWS::RDS::DBInstance",
        {
            "DeletionPolicy": "Snapshot",
            "Properties": Match.object_like(
                {
                    "PubliclyAccessible": False,
                    "StorageEncrypted": True,
                    "BackupRetentionPeriod": Match.any_value(),
                    "DeletionProtection": True,
                    "Engine": "postgres",
                }
            ),
        },
    )
    (instance,) = data.find_resources("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["BackupRetentionPeriod"] >= 1
    assert lockgate.data.termination_protection


def test_stateful_resources_have_pinned_logical_ids(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    pinned = {
        lockgate.data.stack_name: {
            "Vpc": "AWS::EC2::VPC",
            "Database": "AWS::RDS::DBInstance",
            "DatabaseSubnetGroup": "AWS::RDS::DBSubnetGroup",
            "DatabaseSecurityGroup": "AWS::EC2::SecurityGroup",
            "DatabaseMasterSecret": "AWS::SecretsManager::Secret",
            **{
                f"ToolSecret{pascal(s.name)}": "AWS::SecretsManager::Secret"
                for s in CONTRACTS
                if s.needs_database
            },
        },
        lockgate.sessions.stack_name: {
            "SessionsTable": "AWS::DynamoDB::Table",
            "SessionsQueue": "AWS::SQS::Queue",
            "SessionsDeadLetterQueue": "AWS::SQS::Queue",
        },
        lockgate.api.stack_name: {"WebSocketApi": "AWS::ApiGatewayV2::Api"},
    }
    for stack, expected in pinned.items():
        resources = templates[stack].to_json()["Resources"]
        for logical, type_ in expected.items():
            assert resources[logical]["Type"] == type_
    assert lockgate.data.termination_protection
    assert lockgate.sessions.termination_protection


def test_one_secret_per_tool_in_the_rds_shape(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    resources = templates[lockgate.data.stack_name].to_json()["Resources"]
    secrets = [r for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert len(secrets) == 1 + sum(s.needs_database for s in CONTRACTS)  # + the master secret
    for spec in (s for s in CONTRACTS if s.needs_database):
        generated = resources[f"ToolSecret{pascal(spec.name)}"]["Properties"][
            "GenerateSecretString"
        ]
        assert generated["GenerateStringKey"] == "password"
        assert f'"username":"{spec.db_role}"' in generated["SecretStringTemplate"].replace(" ", "")
        attachment = resources[f"ToolSecret{pascal(spec.name)}Attachment"]["Properties"]
        assert attachment["TargetType"] == "AWS::RDS::DBInstance"


def test_vpc_has_only_isolated_subnets_and_a_secrets_manager_endpoint(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    data = templates[lockgate.data.stack_name]
    data.resource_count_is("AWS::EC2::NatGateway", 0)
    data.resource_count_is("AWS::EC2::InternetGateway", 0)
    endpoints = {
        json.dumps(e["Properties"]["ServiceName"]): e["Properties"]
        for e in data.find_resources("AWS::EC2::VPCEndpoint").values()
    }
    (secrets,) = [e for name, e in endpoints.items() if ".secretsmanager" in name]
    assert secrets["PrivateDnsEnabled"] is True
    for subnet in data.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_migrations_run_as_a_custom_resource_with_every_tool_secret(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    data = templates[lockgate.data.stack_name]
    (run,) = data.find_resources("Custom::LockgateMigrations").values()
    properties = run["Properties"]
    assert set(properties["ToolSecretArns"]) == {s.db_role for s in CONTRACTS if s.needs_database}
    assert len(properties["Fingerprint"]) == 64
    data.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "db.handler.handler", "VpcConfig": Match.any_value()}
    )


def test_only_tools_that_call_an_upstream_run_outside_the_vpc(
    assembly: Assembly, lockgate: Lockgate
) -> None:
    # A database tool runs in the VPC to reach PostgreSQL; a tool without network, so that
    # it reaches nothing (tests/infra/test_infra_no_network.py).
    stack = lockgate.tools.stack_name
    for spec in CONTRACTS:
        (function,) = [
            f
            for k, f in assembly.resources(stack, "AWS::Lambda::Function").items()
            if k.startswith(f"{pascal(spec.name)}Function")
        ]
        in_vpc = spec.needs_database or not spec.needs_network
        assert ("VpcConfig" in function["Properties"]) == in_vpc, spec.name
        assert in_vpc == (spec.upstream is None), spec.name


class _Input(StrictInput):
    """Nothing."""

    text: str = Field(max_length=10)


class _Output(ToolOutput):
    """Nothing."""

    text: str


def test_a_tool_with_an_upstream_and_no_database_stays_out_of_the_vpc() -> None:
    # Given a contract that declares no database privileges, and an upstream it calls
    spec = ToolSpec(
        name="text_echo",
        summary="Echo.",
        input=_Input,
        output=_Output,
        scopes=frozenset({"echo"}),
        upstream="echo",
    )
    stack = Stack(App(builtin_cloud_formation_validation=False), "Probe")
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0)
    access = DatabaseAccess(
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        database=ec2.SecurityGroup(stack, "Db", vpc=vpc),
        database_port=5432,
        secrets_endpoint=ec2.SecurityGroup(stack, "Endpoint", vpc=vpc),
    )
    # When it becomes a ToolFunction
    ToolFunction(
        stack,
        pascal(spec.name),
        spec=spec,
        props=ToolFunctionProps(
            code=lambda_.Code.from_inline("def handler(event, context): return event"),
            layers=(),
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            secret=None,
            invoker=iam.Role(
                stack, "Invoker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
            ),
            database=access,
            memory_mb=128,
            timeout=Duration.seconds(3),
            log_retention=logs.RetentionDays.ONE_WEEK,
        ),
    )
    # Then it has no VPC config, no security group of its own, no secret and no network rights
    template = Template.from_stack(stack)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert "VpcConfig" not in function["Properties"]
    assert "LOCKGATE_DB_SECRET_ID" not in function["Properties"]["Environment"]["Variables"]
    roles = str(template.find_resources("AWS::IAM::Role"))
    assert "ec2:CreateNetworkInterface" not in roles
    assert "secretsmanager:" not in roles
    template.resource_count_is("AWS::EC2::SecurityGroup", 2)  # the probe's own two


def test_api_requires_cognito_validates_logs_and_throttles(
    templates: dict[str, Template], lockgate: Lockgate, config: LockgateConfig
) -> None:
    api = templates[lockgate.api.stack_name]
    api.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "AuthorizationType": "COGNITO_USER_POOLS",
            "RequestValidatorId": Match.any_value(),
            "RequestModels": {"application/json": Match.any_value()},
        },
    )
    api.has_resource_properties(
        "AWS::ApiGateway::RequestValidator",
        {"ValidateRequestBody": True, "ValidateRequestParameters": True},
    )
    api.has_resource_properties("AWS::ApiGateway::Authorizer", {"Type": "COGNITO_USER_POOLS"})
    api.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": config.api.throttle_rate_limit,
                            "ThrottlingBurstLimit": config.api.throttle_burst_limit,
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                        }
                    )
                ]
            ),
        },
    )
    for method in api.find_resources("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "COGNITO_USER_POOLS"
        assert "RequestValidatorId" in method["Properties"]


def test_rest_api_routes_all_go_to_the_api_function(assembly: Assembly, lockgate: Lockgate) -> None:
    stack = lockgate.api.stack_name
    resources = assembly.resources(stack, "AWS::ApiGateway::Resource")

    def path(value: Any) -> str:
        target = assembly.target(stack, value)
        if target is None or target[1] not in resources:
            return ""  # the API's root resource
        properties = resources[target[1]]["Properties"]
        return f"{path(properties['ParentId'])}/{properties['PathPart']}"

    routes = {}
    for method in assembly.resources(stack, "AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        routes[f"{properties['HttpMethod']} {path(properties['ResourceId'])}"] = properties
    assert set(routes) == {
        "GET /sessions",
        "POST /sessions",
        "GET /sessions/{id}",
        "GET /sessions/{id}/events",
        "POST /sessions/{id}/cancel",
    }
    api_function = assembly.function(API_HANDLER)
    for route, properties in routes.items():
        uri = json.dumps(properties["Integration"]["Uri"])
        assert api_function[1] in uri, route
        if "{id}" in route:
            assert properties["RequestParameters"] == {"method.request.path.id": True}


def test_user_pool_carries_the_tenant_and_one_group_per_scope(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    api = templates[lockgate.api.stack_name]
    api.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "Schema": Match.array_with(
                [Match.object_like({"Name": "tenant_id", "Mutable": False})]
            ),
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        },
    )
    groups = {
        g["Properties"]["GroupName"]
        for g in api.find_resources("AWS::Cognito::UserPoolGroup").values()
    }
    assert groups == {scope for spec in CONTRACTS for scope in spec.scopes}
    (client,) = api.find_resources("AWS::Cognito::UserPoolClient").values()
    assert "custom:tenant_id" not in client["Properties"]["WriteAttributes"]


def test_worker_is_told_every_tool_its_models_and_where_sessions_live(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    worker = assembly.properties(assembly.function(WORKER_HANDLER))
    env: dict[str, Any] = worker["Environment"]["Variables"]
    assert env["LOCKGATE_MODEL_ID"] == config.models.router_model_id
    assert env["LOCKGATE_SYNTHESIZER_MODEL_ID"] == (config.models.synthesizer or "")
    assert env["LOCKGATE_MAX_STEPS"] == str(config.max_steps)
    rendered = str(env["LOCKGATE_TOOL_FUNCTIONS"])
    for spec in CONTRACTS:
        assert f'"{spec.name}":' in rendered
    api = lockgate.api.stack_name
    assert assembly.target(api, env["LOCKGATE_TABLE_NAME"]) == (
        lockgate.sessions.stack_name,
        "SessionsTable",
    )
    assert assembly.target(api, env["LOCKGATE_QUEUE_URL"]) == (
        lockgate.sessions.stack_name,
        "SessionsQueue",
    )
    endpoint = env["LOCKGATE_WEBSOCKET_ENDPOINT"]["Fn::Join"][1]
    assert endpoint[0] == "https://"
    assert {"Ref": "WebSocketApi"} in endpoint
    assert endpoint[-1].endswith(f"/{config.api.stage_name}")
    assert "VpcConfig" not in worker
    assert worker["Timeout"] == config.worker.timeout_seconds
    assert worker["MemorySize"] == config.worker.memory_mb


def test_api_function_is_told_the_models_a_caller_may_choose(
    assembly: Assembly, config: LockgateConfig
) -> None:
    env = assembly.properties(assembly.function(API_HANDLER))["Environment"]["Variables"]
    assert json.loads(env["LOCKGATE_ALLOWED_MODELS"]) == list(config.models.choosable)
    assert json.loads(env["LOCKGATE_ALLOWED_MODELS"])[0] == config.models.router_model_id
    assert env["LOCKGATE_MODEL_ID"] == config.models.router_model_id
    assert env["LOCKGATE_MAX_STEPS"] == str(config.max_steps)
    assert {"LOCKGATE_TABLE_NAME", "LOCKGATE_QUEUE_URL"} <= set(env)
    assert "LOCKGATE_TOOL_FUNCTIONS" not in env


def test_api_body_schema_matches_the_handler_model() -> None:
    handler_api = pytest.importorskip("orchestrator.handlers.api")
    schema = handler_api.CreateSession.model_json_schema()
    gateway = SESSION_REQUEST_SCHEMA._values  # the struct's fields, snake_case
    assert set(gateway["properties"]) == set(schema["properties"])
    assert gateway["required"] == schema["required"]
    assert (
        gateway["properties"]["request"]._values["max_length"]
        == schema["properties"]["request"]["maxLength"]
    )
    # `options` is a nested model: compare its fields wherever pydantic put its schema.
    options = schema["properties"]["options"]
    ref = next((o["$ref"] for o in (options, *options.get("anyOf", ())) if "$ref" in o), None)
    if ref is not None:
        options = schema["$defs"][ref.rsplit("/", 1)[1]]
    gateway_options = SESSION_OPTIONS_SCHEMA._values["properties"]
    assert set(gateway_options) == set(options["properties"])
    model = options["properties"]["model"]
    model = next((o for o in model.get("anyOf", ()) if o.get("type") == "string"), model)
    assert gateway_options["model"]._values["max_length"] == model["maxLength"]


def test_upstream_urls_reach_only_their_tool(config: LockgateConfig) -> None:
    with pytest.raises(ValueError, match="unknown tools"):
        build(App(), config.model_copy(update={"tool_upstream_urls": {"no_such": "https://x"}}))
    reader = next(s.name for s in CONTRACTS if s.upstream is None)
    with pytest.raises(ValueError, match="declare no upstream"):
        build(App(), config.model_copy(update={"tool_upstream_urls": {reader: "https://x"}}))
    name = next(s.name for s in CONTRACTS if s.upstream is not None)
    app = App(context={"aws:cdk:bundling-stacks": []}, builtin_cloud_formation_validation=False)
    stacks = build(app, config.model_copy(update={"tool_upstream_urls": {name: "https://wx.test"}}))
    functions = Template.from_stack(stacks.tools).find_resources("AWS::Lambda::Function")
    told = {
        k: f["Properties"]["Environment"]["Variables"].get("LOCKGATE_UPSTREAM_URL")
        for k, f in functions.items()
    }
    assert [v for k, v in told.items() if k.startswith(pascal(name))] == ["https://wx.test"]
    assert sum(v is not None for v in told.values()) == 1
