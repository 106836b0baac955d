"""The dashboard and the alarms, read from the observability template."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template
from cfn_model import Assembly

from infra.config import LockgateConfig
from infra.constructs.session_function import METRICS_NAMESPACE
from infra.stacks.api import WORKER_HANDLER, WORKER_SERVICE
from infra.stacks.observability import SESSION_METRICS
from infra.wiring import Lockgate
from tools.registry import CONTRACTS


def _alarms(assembly: Assembly, lockgate: Lockgate) -> dict[str, dict[str, Any]]:
    return {
        k: dict(v["Properties"])
        for k, v in assembly.resources(
            lockgate.observability.stack_name, "AWS::CloudWatch::Alarm"
        ).items()
    }


def _alarm(alarms: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (found,) = [a for k, a in alarms.items() if k.startswith(prefix)]
    return found


def _single_metric(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm's one metric as {Namespace, MetricName, Dimensions, Period, Stat}, whichever
    of CloudFormation's two shapes CDK rendered it in."""
    if "Metrics" not in alarm:
        return {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm["Dimensions"],
            "Period": alarm["Period"],
            "Stat": alarm["Statistic"],
        }
    (metric,) = alarm["Metrics"]
    stat = metric["MetricStat"]
    return {**stat["Metric"], "Period": stat["Period"], "Stat": stat["Stat"]}


def test_alarm_on_dead_letter_queue_depth(assembly: Assembly, lockgate: Lockgate) -> None:
    alarm = _alarm(_alarms(assembly, lockgate), "DeadLetters")
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    metric = _single_metric(alarm)
    assert metric["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metric["Namespace"] == "AWS/SQS"
    (dimension,) = metric["Dimensions"]
    queue = assembly.target(lockgate.observability.stack_name, dimension["Value"])
    assert queue == (lockgate.sessions.stack_name, "SessionsDeadLetterQueue")


def test_every_alarm_notifies_the_encrypted_topic(
    assembly: Assembly, templates: dict[str, Template], lockgate: Lockgate
) -> None:
    stack = lockgate.observability.stack_name
    alarms = _alarms(assembly, lockgate)
    assert {k.rstrip("0123456789ABCDEF") for k in alarms} >= {
        "WorkerErrorRate",
        "DeadLetters",
        "CostPerHour",
        "Api5xx",
        "LambdaThrottles",
    }
    (topic,) = assembly.resources(stack, "AWS::SNS::Topic")
    for alarm in alarms.values():
        (action,) = alarm["AlarmActions"]
        assert assembly.target(stack, action) == (stack, topic)
    template = templates[stack]
    properties = assembly.properties((stack, topic))
    assert assembly.target(stack, properties["KmsMasterKeyId"]) is not None
    (key,) = template.find_resources("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        for s in statements
    )
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_no_email_subscription_unless_configured(
    templates: dict[str, Template], lockgate: Lockgate, config: LockgateConfig
) -> None:
    subscriptions = templates[lockgate.observability.stack_name].find_resources(
        "AWS::SNS::Subscription"
    )
    assert len(subscriptions) == (1 if config.alarms.email else 0)


def test_throttle_alarms_cover_every_function(assembly: Assembly, lockgate: Lockgate) -> None:
    stack = lockgate.observability.stack_name
    watched = set()
    for logical, alarm in _alarms(assembly, lockgate).items():
        if not logical.startswith("LambdaThrottles"):
            continue
        metrics = [m for m in alarm["Metrics"] if "MetricStat" in m]
        assert len(metrics) <= 10  # CloudWatch's limit per alarm
        for metric in metrics:
            stat = metric["MetricStat"]["Metric"]
            assert stat["MetricName"] == "Throttles"
            (dimension,) = stat["Dimensions"]
            watched.add(assembly.target(stack, dimension["Value"]))
    functions = {
        ref
        for ref, _ in assembly.all_resources("AWS::Lambda::Function")
        if ref[0] in (lockgate.api.stack_name, lockgate.tools.stack_name)
    }
    assert watched == functions
    assert len(functions) == 5 + len(CONTRACTS)


def test_worker_error_rate_and_cost_alarms_use_the_configured_thresholds(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    alarms = _alarms(assembly, lockgate)
    cost = _alarm(alarms, "CostPerHour")
    assert cost["Threshold"] == config.alarms.cost_per_hour_usd
    assert _single_metric(cost) == {
        "Namespace": METRICS_NAMESPACE,
        "MetricName": "CostUSD",
        "Dimensions": [{"Name": "service", "Value": WORKER_SERVICE}],
        "Period": 3600,
        "Stat": "Sum",
    }
    rate = _alarm(alarms, "WorkerErrorRate")
    assert rate["Threshold"] == config.alarms.worker_error_rate_percent
    stack = lockgate.observability.stack_name
    worker = assembly.function(WORKER_HANDLER)
    for metric in (m for m in rate["Metrics"] if "MetricStat" in m):
        (dimension,) = metric["MetricStat"]["Metric"]["Dimensions"]
        assert assembly.target(stack, dimension["Value"]) == worker
    api_5xx = _single_metric(_alarm(alarms, "Api5xx"))
    assert api_5xx["MetricName"] == "5XXError"
    dimensions = {d["Name"]: d["Value"] for d in api_5xx["Dimensions"]}
    assert dimensions["ApiName"] == lockgate.api.stack_name
    stage = assembly.target(stack, dimensions["Stage"])
    assert stage is not None
    assert assembly.resources(stage[0])[stage[1]]["Type"] == "AWS::ApiGateway::Stage"
    assert assembly.properties(stage)["StageName"] == config.api.stage_name


def test_dashboard_shows_the_session_metrics(
    templates: dict[str, Template], lockgate: Lockgate
) -> None:
    (dashboard,) = (
        templates[lockgate.observability.stack_name]
        .find_resources("AWS::CloudWatch::Dashboard")
        .values()
    )
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in SESSION_METRICS:
        assert (
            f'\\"{METRICS_NAMESPACE}\\",\\"{name}\\",\\"service\\",\\"{WORKER_SERVICE}\\"' in body
        )
    # `Sessions` also carries an `outcome` dimension: searched, one line per outcome.
    assert "Sessions" not in SESSION_METRICS
    unescaped = body.replace("\\", "")
    assert f"{{{METRICS_NAMESPACE},outcome,service}} MetricName=" in unescaped
    assert f'MetricName="Sessions" service="{WORKER_SERVICE}"' in unescaped
    for metric in (
        "Errors",
        "Throttles",
        "Duration",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "4XXError",
        "5XXError",
    ):
        assert f'\\"{metric}\\"' in body, metric
