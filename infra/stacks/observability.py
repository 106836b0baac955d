"""The observability stack: one dashboard and the alarms that page someone.

The session metrics come from the worker's Powertools Metrics (EMF) in namespace `Lockgate`
with the dimension `service` = `lockgate-worker` (`Sessions` adds `outcome`); the rest are AWS
metrics of the functions, queues and REST API. Every alarm notifies one SNS topic, encrypted with a key CloudWatch may
use, and subscribed to by an optional e-mail address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import AlarmsConfig
from infra.constructs.session_function import METRICS_NAMESPACE

# The worker's metric names (Powertools Metrics, EMF), as its code emits them, with the
# dimension `service` only; `Sessions` also carries `outcome` (see `sessions_by_outcome`).
SESSION_METRICS = (
    "Steps",
    "ToolCalls",
    "ValidationFailures",
    "ToolRetries",
    "InputTokens",
    "OutputTokens",
    "CostUSD",
)
# CloudWatch allows at most 10 metrics in one alarm's math expression.
_MAX_ALARM_METRICS = 10
_FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True)
class ObservabilityStackProps:
    """What is watched, and the thresholds."""

    functions: Mapping[str, lambda_.IFunction]  # every function, by display name
    worker: lambda_.IFunction
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    api_stage: apigw.Stage
    metrics_service: str
    alarms: AlarmsConfig
    dashboard_name: str


class ObservabilityStack(Stack):
    """Dashboard `<prefix>` and alarms: worker errors, dead letters, throttles, cost, API 5xx."""

    def __init__(
        self, scope: Construct, id: str, *, props: ObservabilityStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description)
        self._service = props.metrics_service
        self.topic = self._topic(props.alarms)
        self.alarms: dict[str, cw.Alarm] = self._alarms(props)
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
        self.dashboard = self._dashboard(props)
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)

    def session_metric(
        self, name: str, *, period: Duration = _FIVE_MINUTES, statistic: str = "Sum"
    ) -> cw.Metric:
        """One of the worker's EMF metrics."""
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": self._service},
            statistic=statistic,
            period=period,
            label=name,
        )

    def sessions_by_outcome(self) -> cw.MathExpression:
        """Finished sessions, one line per outcome (`Sessions` also carries `outcome`)."""
        return cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{METRICS_NAMESPACE},outcome,service}} MetricName="Sessions" '
                f"service=\"{self._service}\"', 'Sum', 300)"
            ),
            using_metrics={},
            label="Sessions",
            period=_FIVE_MINUTES,
        )

    def _topic(self, config: AlarmsConfig) -> sns.Topic:
        # CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key: the key
        # policy of a customer managed key has to let it.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Lockgate alarm topic: lets CloudWatch alarms publish",
            enable_key_rotation=True,
            pending_window=Duration.days(7),
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Lockgate alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if config.email:
            topic.add_subscription(sns_subscriptions.EmailSubscription(config.email))
        return topic

    def _alarm(
        self, alarm_id: str, *, alarm_description: str, metric: cw.IMetric, threshold: float
    ) -> cw.Alarm:
        """Every alarm here fires on one period above its threshold; no data is not a breach."""
        return cw.Alarm(
            self,
            alarm_id,
            alarm_description=alarm_description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _alarms(self, props: ObservabilityStackProps) -> dict[str, cw.Alarm]:
        config = props.alarms
        alarms = {
            "WorkerErrorRate": self._alarm(
                "WorkerErrorRate",
                alarm_description=(
                    f"More than {config.worker_error_rate_percent:g}% of worker invocations failed "
                    "in 5 minutes (sessions are retried, then dead-lettered)."
                ),
                metric=cw.MathExpression(
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    using_metrics={
                        "errors": props.worker.metric_errors(period=_FIVE_MINUTES),
                        "invocations": props.worker.metric_invocations(period=_FIVE_MINUTES),
                    },
                    label="Worker error rate (%)",
                    period=_FIVE_MINUTES,
                ),
                threshold=config.worker_error_rate_percent,
            ),
            "DeadLetters": self._alarm(
                "DeadLetters",
                alarm_description=(
                    "A session message reached the dead-letter queue: its session was marked "
                    "failed. Inspect the message, then delete or redrive it."
                ),
                metric=props.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=0,
            ),
            "CostPerHour": self._alarm(
                "CostPerHour",
                alarm_description=(
                    f"Model cost above {config.cost_per_hour_usd:g} USD in one hour "
                    "(sum of the worker's CostUSD metric)."
                ),
                metric=self.session_metric("CostUSD", period=Duration.hours(1)),
                threshold=config.cost_per_hour_usd,
            ),
            "Api5xx": self._alarm(
                "Api5xx",
                alarm_description="The REST API answered 5xx (a function error or timeout).",
                metric=props.api_stage.metric_server_error(period=_FIVE_MINUTES),
                threshold=0,
            ),
        }
        names = sorted(props.functions)
        for index, start in enumerate(range(0, len(names), _MAX_ALARM_METRICS)):
            group = names[start : start + _MAX_ALARM_METRICS]
            alarm_id = "LambdaThrottles" + (str(index + 1) if index else "")
            alarms[alarm_id] = self._alarm(
                alarm_id,
                alarm_description=f"A Lambda function was throttled: {', '.join(group)}.",
                metric=cw.MathExpression(
                    expression="SUM(METRICS())",
                    using_metrics={
                        f"t{i}": props.functions[name].metric_throttles(period=_FIVE_MINUTES)
                        for i, name in enumerate(group)
                    },
                    label="Throttles",
                    period=_FIVE_MINUTES,
                ),
                threshold=0,
            )
        return alarms

    def _dashboard(self, props: ObservabilityStackProps) -> cw.Dashboard:
        functions = sorted(props.functions.items())

        def per_function(metric: str, statistic: str) -> list[cw.IMetric]:
            return [
                function.metric(metric, statistic=statistic, period=_FIVE_MINUTES, label=name)
                for name, function in functions
            ]

        def graph(title: str, left: Sequence[cw.IMetric], width: int) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(left), width=width, height=6)

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=props.dashboard_name)
        dashboard.add_widgets(
            graph(
                "Sessions by outcome, steps",
                [self.sessions_by_outcome(), self.session_metric("Steps")],
                6,
            ),
            graph(
                "Tool calls, retries, validation failures",
                [
                    self.session_metric(n)
                    for n in ("ToolCalls", "ToolRetries", "ValidationFailures")
                ],
                6,
            ),
            graph("Tokens", [self.session_metric(n) for n in ("InputTokens", "OutputTokens")], 6),
            graph(
                "Cost (USD per hour)",
                [self.session_metric("CostUSD", period=Duration.hours(1))],
                6,
            ),
        )
        dashboard.add_widgets(
            graph("Lambda errors", per_function("Errors", "Sum"), 8),
            graph("Lambda throttles", per_function("Throttles", "Sum"), 8),
            graph("Lambda duration (p95, ms)", per_function("Duration", "p95"), 8),
        )
        stage = props.api_stage
        dashboard.add_widgets(
            graph(
                "Queue: age of oldest message (s)",
                [
                    props.queue.metric_approximate_age_of_oldest_message(
                        period=_FIVE_MINUTES, statistic="Maximum", label="Sessions queue"
                    )
                ],
                8,
            ),
            graph(
                "Dead-letter queue depth",
                [
                    props.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(1), statistic="Maximum", label="Dead letters"
                    )
                ],
                8,
            ),
            graph(
                "REST API 4xx / 5xx",
                [
                    stage.metric_client_error(period=_FIVE_MINUTES, label="4xx"),
                    stage.metric_server_error(period=_FIVE_MINUTES, label="5xx"),
                ],
                8,
            ),
        )
        dashboard.add_widgets(
            cw.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=4
            )
        )
        return dashboard
