"""The API stack: Cognito users, the REST API and the WebSocket API, and the functions behind
them and behind the sessions queue.

- `Api` (REST, Cognito authorizer on every method): validates a request, records the session
  (DynamoDB) and enqueues it (SQS); reads sessions and their events; requests cancellation.
  It can neither invoke a tool nor call a model.
- `Worker` (SQS): runs the orchestrator loop with the orchestrator's role, the only principal
  the tools trust; it alone calls Bedrock (and the `openai`/`anthropic` providers the
  configured models use: their SDK layers and the key secrets are its alone), checkpoints each
  step and pushes progress to WebSocket subscribers.
- `DeadLetters` (the dead-letter queue): marks the sessions whose messages gave up as failed.
- `WebSocket` + `WebSocketAuthorizer`: subscriptions to a session's progress events; the
  `$connect` route verifies a Cognito ID token passed as the `token` query parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jsii
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
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as apigwv2_authorizers
from aws_cdk import aws_apigatewayv2_integrations as apigwv2_integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    ApiConfig,
    FunctionConfig,
    ModelsConfig,
    WorkerConfig,
    foundation_model_id,
    is_inference_profile,
)
from infra.constructs.layers import layer_versions
from infra.constructs.session_function import (
    OrchestratorAsset,
    SessionFunction,
    SessionFunctionProps,
)
from infra.stacks.data import pin
from infra.stacks.sessions import OWNER_INDEX
from orchestrator.limits import MAX_STEPS_CEILING
from tools.kit.contract import ToolSpec

TENANT_ATTRIBUTE = "tenant_id"  # read by the orchestrator as the `custom:tenant_id` claim

# Powertools service names; the dashboard reads the worker's metrics by this dimension.
API_SERVICE = "lockgate-api"
WORKER_SERVICE = "lockgate-worker"
DEAD_LETTER_SERVICE = "lockgate-dead-letters"
WEBSOCKET_SERVICE = "lockgate-websocket"

# The entry points, by module path only: infra never imports handler code.
API_HANDLER = "orchestrator.handlers.api.handler"
WORKER_HANDLER = "orchestrator.handlers.worker.handler"
DEAD_LETTER_HANDLER = "orchestrator.handlers.dlq.handler"
WEBSOCKET_HANDLER = "orchestrator.handlers.websocket.handler"
WEBSOCKET_AUTHORIZER = "orchestrator.handlers.websocket_authorizer.authorize"

# How long a worker's claim on a session outlives its invocation's timeout.
LEASE_MARGIN_SECONDS = 30

# What each function may do on the sessions table, and nothing more (no Scan, no batch APIs).
# A TransactWriteItems call is authorized per element by these same actions (Put → PutItem,
# Update → UpdateItem, ...): `dynamodb:TransactWriteItems` is not an IAM action. A transaction
# with a ConditionCheck element would also need `dynamodb:ConditionCheckItem`; none uses one.
API_TABLE_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "Query")
WORKER_TABLE_ACTIONS = (*API_TABLE_ACTIONS, "DeleteItem")  # DeleteItem: stale connections
DEAD_LETTER_TABLE_ACTIONS = ("GetItem", "PutItem", "UpdateItem")
WEBSOCKET_TABLE_ACTIONS = (*API_TABLE_ACTIONS, "DeleteItem")
# What a Lambda event source mapping needs to read a queue, plus hiding a message longer.
CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")

# Body of POST /sessions, checked by API Gateway before the Lambda runs (the handler's
# CreateSession validates it again, including that `options.model` is one it allows; a test
# keeps the two in step).
SESSION_OPTIONS_SCHEMA = apigw.JsonSchema(
    type=apigw.JsonSchemaType.OBJECT,
    additional_properties=False,
    properties={
        "max_steps": apigw.JsonSchema(
            type=apigw.JsonSchemaType.INTEGER, minimum=1, maximum=MAX_STEPS_CEILING
        ),
        "max_tokens": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1),
        "max_usd": apigw.JsonSchema(
            type=apigw.JsonSchemaType.NUMBER, minimum=0, exclusive_minimum=True
        ),
        "max_seconds": apigw.JsonSchema(
            type=apigw.JsonSchemaType.NUMBER, minimum=0, exclusive_minimum=True
        ),
        "model": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=200),
    },
)
SESSION_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    type=apigw.JsonSchemaType.OBJECT,
    required=["request"],
    additional_properties=False,
    properties={
        "request": apigw.JsonSchema(
            type=apigw.JsonSchemaType.STRING, min_length=1, max_length=4000
        ),
        "options": SESSION_OPTIONS_SCHEMA,
    },
)


@dataclass(frozen=True)
class ApiStackProps:
    """What the API stack is built from: the tools stack's role and functions, the sessions
    stack's table and queues, the orchestrator asset, and configuration."""

    specs: Sequence[ToolSpec]
    orchestrator_role: iam.Role
    tool_functions: Mapping[str, lambda_.IFunction]
    table: dynamodb.ITable
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    code: lambda_.Code
    layers: Sequence[Callable[[], lambda_.Code]]
    auth_layer: Callable[[], lambda_.Code]
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    api: ApiConfig
    models: ModelsConfig
    function: FunctionConfig
    worker: WorkerConfig
    max_steps: int
    log_retention: logs.RetentionDays
    # Model providers besides Bedrock, for the worker only: their layers (construct id → code)
    # and each provider's key secret (`openai` → secret).
    provider_layers: Mapping[str, Callable[[], lambda_.Code]] = field(default_factory=dict)
    provider_secrets: Mapping[str, secretsmanager.ISecret] = field(default_factory=dict)


def scope_group_id(scope: str) -> str:
    """`customers:read` → `GroupCustomersRead`."""
    return "Group" + "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", scope) if p)


def _table(sid: str, table: dynamodb.ITable, actions: Sequence[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, actions=[f"dynamodb:{a}" for a in actions], resources=[table.table_arn]
    )


class ApiStack(Stack):
    """REST and WebSocket APIs, Cognito, and the api, worker, dead-letter and WebSocket functions."""

    def __init__(
        self, scope: Construct, id: str, *, props: ApiStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description)
        self.user_pool, self.client = self._users(props)
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[self.user_pool]
        )
        self.account_logging = (
            self._account_logging_role() if props.api.manage_account_logging_role else None
        )
        asset = OrchestratorAsset(
            code=props.code,
            layers=layer_versions(self, "Layer", props.layers, props.runtime, props.architecture),
            runtime=props.runtime,
            architecture=props.architecture,
            log_retention=props.log_retention,
        )
        self.websocket, self.websocket_stage, websocket_functions = self._websocket(props, asset)
        self.api_function = self._api_function(props, asset)
        self.worker = self._worker(props, asset)
        self.dead_letters = self._dead_letters(props, asset)
        self.api = self._api(props)
        # Every function this stack runs, by display name (for the dashboard and alarms).
        self.functions: dict[str, lambda_.IFunction] = {
            "Api": self.api_function,
            "Worker": self.worker,
            "DeadLetters": self.dead_letters,
            **websocket_functions,
        }
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)
        CfnOutput(self, "WebSocketUrl", value=self.websocket_stage.url)

    def _api_function(self, props: ApiStackProps, asset: OrchestratorAsset) -> lambda_.Function:
        # `Api` is the REST API's id (and so its URL): keep it.
        return SessionFunction(
            self,
            "ApiFunction",
            asset=asset,
            props=SessionFunctionProps(
                handler=API_HANDLER,
                description="Lockgate API: creates, reads and cancels sessions; enqueues work",
                service=API_SERVICE,
                function=props.function,
                environment={
                    "LOCKGATE_TABLE_NAME": props.table.table_name,
                    "LOCKGATE_QUEUE_URL": props.queue.queue_url,
                    "LOCKGATE_MODEL_ID": props.models.router_model_id,
                    "LOCKGATE_ALLOWED_MODELS": json.dumps(list(props.models.choosable)),
                    "LOCKGATE_MAX_STEPS": str(props.max_steps),
                },
                statements=[
                    _table("Sessions", props.table, API_TABLE_ACTIONS),
                    iam.PolicyStatement(
                        sid="SessionsByOwner",
                        actions=["dynamodb:Query"],
                        resources=[f"{props.table.table_arn}/index/{OWNER_INDEX}"],
                    ),
                    iam.PolicyStatement(
                        sid="EnqueueSessions",
                        actions=["sqs:SendMessage"],
                        resources=[props.queue.queue_arn],
                    ),
                ],
            ),
        ).function

    def _worker(self, props: ApiStackProps, asset: OrchestratorAsset) -> lambda_.Function:
        worker = props.worker
        connections = self.format_arn(
            service="execute-api",
            resource=self.websocket.api_id,
            resource_name=f"{self.websocket_stage.stage_name}/POST/@connections/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        construct = SessionFunction(
            self,
            "Worker",
            asset=asset,
            props=SessionFunctionProps(
                handler=WORKER_HANDLER,
                description="Lockgate worker: runs a session's routing loop from the queue",
                service=WORKER_SERVICE,
                function=worker,
                role=props.orchestrator_role,
                reserved_concurrency=worker.reserved_concurrency,
                extra_layers=[
                    lambda_.LayerVersion(
                        self,
                        f"{name}Layer",
                        code=code(),
                        compatible_runtimes=[props.runtime],
                        compatible_architectures=[props.architecture],
                    )
                    for name, code in props.provider_layers.items()
                ],
                environment={
                    "LOCKGATE_TABLE_NAME": props.table.table_name,
                    "LOCKGATE_QUEUE_URL": props.queue.queue_url,
                    "LOCKGATE_TOOL_FUNCTIONS": self.to_json_string(
                        {
                            name: fn.function_name
                            for name, fn in sorted(props.tool_functions.items())
                        }
                    ),
                    "LOCKGATE_MODEL_ID": props.models.router_model_id,
                    "LOCKGATE_SYNTHESIZER_MODEL_ID": props.models.synthesizer or "",
                    "LOCKGATE_PROMPT_CACHE": "true" if props.models.prompt_cache else "false",
                    "LOCKGATE_MAX_STEPS": str(props.max_steps),
                    "LOCKGATE_WEBSOCKET_ENDPOINT": self.websocket_stage.callback_url,
                    # A session's lease must outlive the invocation holding it.
                    "LOCKGATE_LEASE_SECONDS": str(worker.timeout_seconds + LEASE_MARGIN_SECONDS),
                    **self._provider_environment(props),
                },
                statements=[
                    iam.PolicyStatement(
                        sid="InvokeConfiguredModels",
                        actions=["bedrock:InvokeModel"],
                        resources=self._model_arns(props.models),
                    ),
                    *self._provider_statements(props),
                    _table("Sessions", props.table, WORKER_TABLE_ACTIONS),
                    iam.PolicyStatement(
                        sid="ConsumeAndRequeueSessions",
                        actions=[
                            *CONSUME_ACTIONS,
                            "sqs:ChangeMessageVisibility",
                            "sqs:SendMessage",
                        ],
                        resources=[props.queue.queue_arn],
                    ),
                    iam.PolicyStatement(
                        sid="PushProgressToSubscribers",
                        actions=["execute-api:ManageConnections"],
                        resources=[connections],
                    ),
                ],
            ),
        )
        if construct.policy is None:
            raise RuntimeError("the worker must run with the orchestrator's role")
        Validations.of(construct.policy).acknowledge(
            Acknowledgment(
                id=(
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                    f"<AWS::AccountId>:<WebSocketApi>/{self.websocket_stage.stage_name}"
                    "/POST/@connections/*]"
                ),
                reason=(
                    "WebSocket connection ids are assigned by API Gateway when a client connects; "
                    "the grant is limited to POST (send) on this API's stage, not GET or DELETE."
                ),
            )
        )
        construct.function.add_event_source(
            event_sources.SqsEventSource(
                props.queue,
                batch_size=worker.batch_size,
                report_batch_item_failures=True,
                max_concurrency=worker.reserved_concurrency,
            )
        )
        return construct.function

    def _provider_environment(self, props: ApiStackProps) -> dict[str, str]:
        """Where the worker finds each provider's key (secret ARNs, never a key) and, when
        configured, the provider's base URL (the SDK's own variable)."""
        environment = {
            f"{provider.upper()}_BASE_URL": url for provider, url in props.models.base_urls.items()
        }
        if props.models.prices:
            environment["LOCKGATE_PRICES"] = json.dumps(
                {spec: price.model_dump() for spec, price in sorted(props.models.prices.items())}
            )
        if props.provider_secrets:
            environment["LOCKGATE_PROVIDER_SECRETS"] = self.to_json_string(
                {p: secret.secret_arn for p, secret in sorted(props.provider_secrets.items())}
            )
        return environment

    def _provider_statements(self, props: ApiStackProps) -> list[iam.PolicyStatement]:
        if not props.provider_secrets:
            return []
        return [
            iam.PolicyStatement(
                sid="ReadModelProviderKeys",
                actions=["secretsmanager:GetSecretValue"],
                resources=[s.secret_arn for _, s in sorted(props.provider_secrets.items())],
            )
        ]

    def _dead_letters(self, props: ApiStackProps, asset: OrchestratorAsset) -> lambda_.Function:
        function = SessionFunction(
            self,
            "DeadLetters",
            asset=asset,
            props=SessionFunctionProps(
                handler=DEAD_LETTER_HANDLER,
                description="Lockgate dead letters: marks sessions whose messages failed as failed",
                service=DEAD_LETTER_SERVICE,
                function=props.function,
                environment={"LOCKGATE_TABLE_NAME": props.table.table_name},
                statements=[
                    _table("Sessions", props.table, DEAD_LETTER_TABLE_ACTIONS),
                    iam.PolicyStatement(
                        sid="ConsumeDeadLetters",
                        actions=list(CONSUME_ACTIONS),
                        resources=[props.dead_letter_queue.queue_arn],
                    ),
                ],
            ),
        ).function
        function.add_event_source(
            event_sources.SqsEventSource(
                props.dead_letter_queue, batch_size=10, report_batch_item_failures=True
            )
        )
        return function

    def _websocket(
        self, props: ApiStackProps, asset: OrchestratorAsset
    ) -> tuple[apigwv2.WebSocketApi, apigwv2.WebSocketStage, dict[str, lambda_.IFunction]]:
        auth_layer = lambda_.LayerVersion(
            self,
            "AuthLayer",
            code=props.auth_layer(),
            compatible_runtimes=[props.runtime],
            compatible_architectures=[props.architecture],
        )
        environment = {
            "LOCKGATE_TABLE_NAME": props.table.table_name,
            "LOCKGATE_USER_POOL_ID": self.user_pool.user_pool_id,
            "LOCKGATE_USER_POOL_CLIENT_ID": self.client.user_pool_client_id,
            "LOCKGATE_REGION": Aws.REGION,
        }
        handler = SessionFunction(
            self,
            "WebSocket",
            asset=asset,
            props=SessionFunctionProps(
                handler=WEBSOCKET_HANDLER,
                description="Lockgate WebSocket: connections and subscriptions to session events",
                service=WEBSOCKET_SERVICE,
                function=props.function,
                environment=environment,
                statements=[_table("Sessions", props.table, WEBSOCKET_TABLE_ACTIONS)],
            ),
        ).function
        # Verifies the token against the user pool's public keys (HTTPS); it needs no AWS API.
        authorizer = SessionFunction(
            self,
            "WebSocketAuthorizer",
            asset=asset,
            props=SessionFunctionProps(
                handler=WEBSOCKET_AUTHORIZER,
                description="Lockgate WebSocket authorizer: verifies a Cognito ID token",
                service=WEBSOCKET_SERVICE,
                function=props.function,
                environment=environment,
                extra_layers=[auth_layer],
            ),
        ).function
        api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            description="Lockgate: progress events of sessions, pushed to subscribers",
            route_selection_expression="$request.body.action",
        )
        # Clients hold the wss:// URL, which carries the API id: never replace it by accident.
        pin(api, "WebSocketApi")
        api.add_route(
            "$connect",
            integration=apigwv2_integrations.WebSocketLambdaIntegration("Connect", handler),
            authorizer=apigwv2_authorizers.WebSocketLambdaAuthorizer(
                "TokenAuthorizer",
                authorizer,
                identity_source=["route.request.querystring.token"],
            ),
        )
        for key, integration_id, return_response in (
            ("$disconnect", "Disconnect", False),
            ("subscribe", "Subscribe", True),
        ):
            route = api.add_route(
                key,
                integration=apigwv2_integrations.WebSocketLambdaIntegration(
                    integration_id, handler
                ),
                return_response=return_response,
            )
            Validations.of(route).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason=(
                        "API Gateway authorizes a WebSocket connection once, on $connect (Lambda "
                        "authorizer verifying a Cognito ID token); later routes of the same "
                        "connection cannot carry an authorizer. The handler checks the session's "
                        "owner on subscribe."
                    ),
                )
            )

        access_logs = logs.LogGroup(
            self,
            "WebSocketAccessLogs",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        stage = apigwv2.WebSocketStage(
            self,
            "WebSocketStage",
            web_socket_api=api,
            stage_name=props.api.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=props.api.throttle_rate_limit,
                burst_limit=props.api.throttle_burst_limit,
            ),
            access_log_settings=_AccessLogs(
                apigwv2.LogGroupLogDestination(access_logs),
                # Never the query string: it carries the token.
                apigw.AccessLogFormat.custom(
                    json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "ip": "$context.identity.sourceIp",
                            "requestTime": "$context.requestTime",
                            "routeKey": "$context.routeKey",
                            "eventType": "$context.eventType",
                            "status": "$context.status",
                            "connectionId": "$context.connectionId",
                            "user": "$context.authorizer.principalId",
                            "error": "$context.error.message",
                            "integrationError": "$context.integrationErrorMessage",
                        }
                    )
                ),
            ),
        )
        if self.account_logging is not None:
            stage.node.add_dependency(self.account_logging)
        return api, stage, {"WebSocket": handler, "WebSocketAuthorizer": authorizer}

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
            # Also the `ApiName` dimension of its metrics: unique per account and region.
            rest_api_name=self.stack_name,
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
        if self.account_logging is not None:
            api.deployment_stage.node.add_dependency(self.account_logging)
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
        integration = apigw.LambdaIntegration(self.api_function, allow_test_invoke=False)
        with_id = {"method.request.path.id": True}
        sessions = api.root.add_resource("sessions")
        sessions.add_method("GET", integration, request_validator=validator)
        sessions.add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": session_request},
        )
        session = sessions.add_resource("{id}")
        session.add_method(
            "GET", integration, request_validator=validator, request_parameters=with_id
        )
        session.add_resource("events").add_method(
            "GET", integration, request_validator=validator, request_parameters=with_id
        )
        session.add_resource("cancel").add_method(
            "POST", integration, request_validator=validator, request_parameters=with_id
        )
        return api

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


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """Access log settings of a WebSocket stage (a jsii interface, not a struct)."""

    def __init__(
        self, destination: apigwv2.IAccessLogDestination, format: apigw.AccessLogFormat
    ) -> None:
        self._destination = destination
        self._format = format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        """Where the stage writes its access logs."""
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        """One JSON object per request."""
        return self._format
