"""The asynchronous sessions shape: table, queue and DLQ, the event sources, the WebSocket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template
from cfn_model import Assembly
from conftest import cdk_context

from infra.config import LockgateConfig
from infra.stacks.api import (
    DEAD_LETTER_HANDLER,
    WEBSOCKET_AUTHORIZER,
    WEBSOCKET_HANDLER,
    WORKER_HANDLER,
)
from infra.stacks.sessions import visibility_timeout_seconds
from infra.wiring import Lockgate, build


@pytest.fixture(scope="module")
def tuned(config: LockgateConfig) -> Lockgate:
    """The same app with every new setting moved off its default."""
    update = {
        "queue": config.queue.model_copy(update={"max_receive_count": 7}),
        "worker": config.worker.model_copy(
            update={"timeout_seconds": 120, "batch_size": 3, "reserved_concurrency": 4}
        ),
        "alarms": config.alarms.model_copy(
            update={"email": "oncall@example.com", "cost_per_hour_usd": 2.5}
        ),
        "models": config.models.model_copy(
            update={
                "synthesizer": "amazon.nova-pro-v1:0",
                "allowed": ("amazon.nova-micro-v1:0", config.models.router_model_id),
            }
        ),
    }
    app = App(
        context={**cdk_context(), "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    return build(app, config.model_copy(update=update))


def _queues(template: Template) -> tuple[dict[str, Any], dict[str, Any]]:
    resources = template.to_json()["Resources"]
    return resources["SessionsQueue"], resources["SessionsDeadLetterQueue"]


def _event_source(assembly: Assembly, handler: str) -> dict[str, Any]:
    function = assembly.function(handler)
    (mapping,) = [
        m["Properties"]
        for (stack, _), m in assembly.all_resources("AWS::Lambda::EventSourceMapping")
        if assembly.target(stack, m["Properties"]["FunctionName"]) == function
    ]
    return dict(mapping)


def test_table_is_on_demand_with_pitr_ttl_and_retained(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    table = templates[lockgate.sessions.stack_name].to_json()["Resources"]["SessionsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
        "owner": "S",
        "created_at": "N",
    }
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-owner"
    assert index["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"  # never the steps or events
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["DeletionProtectionEnabled"] is True


def test_dead_letter_queue_is_wired_with_the_configured_receive_count(
    templates: dict[str, Template], lockgate: Lockgate, config: LockgateConfig, tuned: Lockgate
) -> None:
    for app, expected in ((lockgate, config.queue.max_receive_count), (tuned, 7)):
        template = (
            templates[app.sessions.stack_name]
            if app is lockgate
            else Template.from_stack(app.sessions)
        )
        queue, _ = _queues(template)
        redrive = queue["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == expected
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["SessionsDeadLetterQueue", "Arn"]}


def test_queues_are_encrypted_tls_only_and_the_dlq_keeps_14_days(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    template = templates[lockgate.sessions.stack_name]
    queue, dead_letters = _queues(template)
    for q in (queue, dead_letters):
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    assert dead_letters["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    protected = set()
    for policy in policies.values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        protected |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert protected == {"SessionsQueue", "SessionsDeadLetterQueue"}


def test_visibility_timeout_outlasts_the_worker(
    assembly: Assembly, templates: dict[str, Template], lockgate: Lockgate, tuned: Lockgate
) -> None:
    queue, _ = _queues(templates[lockgate.sessions.stack_name])
    worker_timeout = assembly.properties(assembly.function(WORKER_HANDLER))["Timeout"]
    visibility = queue["Properties"]["VisibilityTimeout"]
    assert visibility > worker_timeout
    assert visibility >= 6 * worker_timeout
    assert visibility >= worker_timeout + 30
    tuned_queue, _ = _queues(Template.from_stack(tuned.sessions))
    assert tuned_queue["Properties"]["VisibilityTimeout"] == 720
    # Within SQS's 12 hours even for the longest Lambda timeout.
    assert visibility_timeout_seconds(900) == 5400
    assert visibility_timeout_seconds(10) == 60
    # The dead-letter function's queue outlasts it too.
    _, dead_letters = _queues(templates[lockgate.sessions.stack_name])
    dlq_timeout = assembly.properties(assembly.function(DEAD_LETTER_HANDLER))["Timeout"]
    assert dead_letters["Properties"]["VisibilityTimeout"] >= 6 * dlq_timeout


def test_worker_event_source_reports_batch_item_failures(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    mapping = _event_source(assembly, WORKER_HANDLER)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["BatchSize"] <= 5
    assert mapping["BatchSize"] == config.worker.batch_size
    target = assembly.target(lockgate.api.stack_name, mapping["EventSourceArn"])
    assert target == (lockgate.sessions.stack_name, "SessionsQueue")
    dead_letters = _event_source(assembly, DEAD_LETTER_HANDLER)
    assert dead_letters["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    target = assembly.target(lockgate.api.stack_name, dead_letters["EventSourceArn"])
    assert target == (lockgate.sessions.stack_name, "SessionsDeadLetterQueue")


def test_worker_exists_only_after_its_grants(assembly: Assembly) -> None:
    # Lambda checks the queue permissions when the event source mapping is created.
    stack, worker = assembly.function(WORKER_HANDLER)
    depends_on = assembly.resources(stack)[worker].get("DependsOn", [])
    policies = assembly.resources(stack, "AWS::IAM::Policy")
    assert any(d in policies and d.startswith("WorkerRuntime") for d in depends_on)


def test_reserved_concurrency_caps_the_event_source_too(tuned: Lockgate) -> None:
    template = Template.from_stack(tuned.api)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": WORKER_HANDLER, "ReservedConcurrentExecutions": 4, "Timeout": 120},
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 3, "ScalingConfig": {"MaximumConcurrency": 4}},
    )
    (env,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == WORKER_HANDLER
    ]
    assert env["LOCKGATE_SYNTHESIZER_MODEL_ID"] == "amazon.nova-pro-v1:0"
    assert env["LOCKGATE_LEASE_SECONDS"] == "150"


def test_worker_may_invoke_every_model_a_caller_may_choose(tuned: Lockgate) -> None:
    rendered = json.dumps(Template.from_stack(tuned.api).find_resources("AWS::IAM::Policy"))
    for model in ("amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"):
        assert f"foundation-model/{model}" in rendered
    allowed = [
        json.loads(f["Properties"]["Environment"]["Variables"]["LOCKGATE_ALLOWED_MODELS"])
        for f in Template.from_stack(tuned.api).find_resources("AWS::Lambda::Function").values()
        if "LOCKGATE_ALLOWED_MODELS" in f["Properties"]["Environment"]["Variables"]
    ]
    assert allowed == [["amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0"]]


def test_websocket_connect_route_has_the_token_authorizer(
    templates: dict[str, Template], assembly: Assembly, lockgate: Lockgate
) -> None:
    stack = lockgate.api.stack_name
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in assembly.resources(stack, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect", "subscribe"}
    connect = routes["$connect"]
    assert connect["AuthorizationType"] == "CUSTOM"
    authorizer_ref = assembly.target(stack, connect["AuthorizerId"])
    assert authorizer_ref is not None
    authorizer = assembly.properties(authorizer_ref)
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert assembly.function(WEBSOCKET_AUTHORIZER)[1] in json.dumps(authorizer["AuthorizerUri"])
    # Every route goes to the WebSocket handler.
    handler = assembly.function(WEBSOCKET_HANDLER)[1]
    integrations = assembly.resources(stack, "AWS::ApiGatewayV2::Integration")
    for key, route in routes.items():
        (integration,) = [
            i for logical, i in integrations.items() if logical in json.dumps(route["Target"])
        ]
        assert handler in json.dumps(integration["Properties"]["IntegrationUri"]), key
    environment = assembly.properties(assembly.function(WEBSOCKET_AUTHORIZER))["Environment"]
    assert {
        "LOCKGATE_TABLE_NAME",
        "LOCKGATE_USER_POOL_ID",
        "LOCKGATE_USER_POOL_CLIENT_ID",
        "LOCKGATE_REGION",
    } <= set(environment["Variables"])


def test_websocket_stage_logs_and_throttles(
    templates: dict[str, Template], lockgate: Lockgate, config: LockgateConfig
) -> None:
    templates[lockgate.api.stack_name].has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": config.api.stage_name,
            "AutoDeploy": True,
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": config.api.throttle_rate_limit,
                "ThrottlingBurstLimit": config.api.throttle_burst_limit,
            },
        },
    )
    (stage,) = (
        templates[lockgate.api.stack_name].find_resources("AWS::ApiGatewayV2::Stage").values()
    )
    assert "querystring" not in stage["Properties"]["AccessLogSettings"]["Format"]
