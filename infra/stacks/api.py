"""The API stack: Cognito users, a REST API, and the orchestrator Lambda behind it.

Sessions run synchronously inside POST /sessions for now. The asynchronous shape (SQS,
worker, DynamoDB sessions, GET /sessions/{id}, WebSocket) attaches to `self.api`,
`self.authorizer` and `self.orchestrator_role` without changing what is here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import (
    ApiConfig,
    FunctionConfig,
    ModelsConfig,
    foundation_model_id,
    is_inference_profile,
)
from tools.kit.contract import ToolSpec

TENANT_ATTRIBUTE = "tenant_id"  # read by the orchestrator as the `custom:tenant_id` claim

# Body of POST /sessions, checked by API Gateway before the Lambda runs (the handler's
# SessionRequest validates it again; a test keeps the two in step).
SESSION_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    type=apigw.JsonSchemaType.OBJECT,
    required=["request"],
    additional_properties=False,
    properties={
        "request": apigw.JsonSchema(
            type=apigw.JsonSchemaType.STRING, min_length=1, max_length=4000
        ),
        "max_steps": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1, maximum=100),
    },
)


@dataclass(frozen=True)
class ApiStackProps:
    """What the API stack is built from."""

    specs: Sequence[ToolSpec]
    orchestrator_role: iam.IRole
    tool_functions: Mapping[str, lambda_.IFunction]
    code: lambda_.Code
    layers: Sequence[Callable[[], lambda_.Code]]
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    api: ApiConfig
    models: ModelsConfig
    function: FunctionConfig
    max_steps: int
    log_retention: logs.RetentionDays


def scope_group_id(scope: str) -> str:
    """`customers:read` → `GroupCustomersRead`."""
    return "Group" + "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", scope) if p)


class ApiStack(Stack):
    """REST API (Cognito authorizer, validation, access logs, throttling) → orchestrator."""

    def __init__(
        self, scope: Construct, id: str, *, props: ApiStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description)
        self.orchestrator = self._orchestrator(props)
        self.user_pool, self.client = self._users(props)
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[self.user_pool]
        )
        self.api = self._api(props)
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)

    def _orchestrator(self, props: ApiStackProps) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            "OrchestratorLogs",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        runtime_policy = iam.Policy(
            self,
            "OrchestratorRuntime",
            roles=[props.orchestrator_role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="InvokeConfiguredModels",
                    actions=["bedrock:InvokeModel"],
                    resources=self._model_arns(props.models),
                ),
            ],
        )
        layers = [
            lambda_.LayerVersion(
                self,
                f"Layer{index}",
                code=layer_code(),
                compatible_runtimes=[props.runtime],
                compatible_architectures=[props.architecture],
            )
            for index, layer_code in enumerate(props.layers)
        ]
        function = lambda_.Function(
            self,
            "Orchestrator",
            description="Lockgate orchestrator: runs a session's routing loop",
            runtime=props.runtime,
            architecture=props.architecture,
            code=props.code,
            handler="orchestrator.handlers.api.handler",
            layers=layers,
            role=props.orchestrator_role,
            log_group=log_group,
            memory_size=props.function.memory_mb,
            timeout=Duration.seconds(props.function.timeout_seconds),
            environment={
                "LOCKGATE_TOOL_FUNCTIONS": self.to_json_string(
                    {name: fn.function_name for name, fn in sorted(props.tool_functions.items())}
                ),
                "LOCKGATE_MODEL_ID": props.models.router_model_id,
                "LOCKGATE_MAX_STEPS": str(props.max_steps),
                "POWERTOOLS_SERVICE_NAME": "lockgate-orchestrator",
            },
        )
        function.node.add_dependency(runtime_policy)
        return function

    def _model_arns(self, models: ModelsConfig) -> list[str]:
        regions = models.inference_regions or (Aws.REGION,)
        arns: list[str] = []
        for model_id in models.model_ids:
            if is_inference_profile(model_id):
                arns.append(
                    self.format_arn(
                        service="bedrock",
                        resource="inference-profile",
                        resource_name=model_id,
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                )
            arns.extend(
                self.format_arn(
                    service="bedrock",
                    region=region,
                    account="",
                    resource="foundation-model",
                    resource_name=foundation_model_id(model_id),
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
                for region in regions
            )
        return list(dict.fromkeys(arns))

    def _users(self, props: ApiStackProps) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            custom_attributes={
                TENANT_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=64, mutable=False)
            },
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED if props.api.require_mfa else cognito.Mfa.OFF,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            # Users and their tenants are state: a replaced pool would lose them.
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(pool).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG8",
                reason=(
                    "The Plus feature plan (threat protection) is billed per monthly active user; "
                    "self sign-up is off, MFA and a strong password policy are on."
                ),
            )
        )
        if not props.api.require_mfa:
            Validations.of(pool).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-COG2",
                    reason="MFA turned off in cdk.json (lockgate.api.require_mfa), e.g. for a demo pool.",
                )
            )
        # Groups are the scopes the contracts require: a user in `customers:read` holds it.
        for scope in sorted({s for spec in props.specs for s in spec.scopes}):
            cognito.UserPoolGroup(
                self,
                scope_group_id(scope),
                user_pool=pool,
                group_name=scope,
                description=f"Grants the {scope} scope to Lockgate sessions",
            )
        client = pool.add_client(
            "Client",
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1),
            # The tenant is set by an administrator; a user can never write it.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(fullname=True),
        )
        return pool, client

    def _api(self, props: ApiStackProps) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        api = apigw.RestApi(
            self,
            "Api",
            description="Lockgate: run agent sessions",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=props.api.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=props.api.throttle_rate_limit,
                throttling_burst_limit=props.api.throttle_burst_limit,
            ),
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.COGNITO
            ),
        )
        if props.api.manage_account_logging_role:
            api.deployment_stage.node.add_dependency(self._account_logging_role())
        Validations.of(api.deployment_stage).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason=(
                    "No WAF web ACL yet (about 6 USD a month at rest): every method needs a Cognito "
                    "token, bodies are validated, and the stage is throttled."
                ),
            )
        )
        validator = api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        session_request = api.add_model(
            "SessionRequest",
            content_type="application/json",
            model_name="SessionRequest",
            schema=SESSION_REQUEST_SCHEMA,
        )
        sessions = api.root.add_resource("sessions")
        sessions.add_method(
            "POST",
            apigw.LambdaIntegration(self.orchestrator, allow_test_invoke=False),
            request_validator=validator,
            request_models={"application/json": session_request},
        )
        return api

    def _account_logging_role(self) -> apigw.CfnAccount:
        """The per-region role API Gateway writes CloudWatch logs with (no managed policy)."""
        log_groups = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role = iam.Role(
            self,
            "ApiGatewayLogging",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway account setting: write access and execution logs",
            inline_policies={
                "Logs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "logs:CreateLogGroup",
                                "logs:CreateLogStream",
                                "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams",
                                "logs:FilterLogEvents",
                                "logs:GetLogEvents",
                                "logs:PutLogEvents",
                            ],
                            resources=[log_groups],
                        )
                    ]
                )
            },
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]",
                reason=(
                    "API Gateway uses one logging role per account and region, for every REST API "
                    "there, and names execution log groups itself; the grant is limited to log "
                    "groups in this account and region (the actions of the AWS managed "
                    "AmazonAPIGatewayPushToCloudWatchLogs, without attaching it)."
                ),
            )
        )
        return apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
