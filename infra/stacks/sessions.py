"""The sessions stack (stateful): the DynamoDB table sessions live in, and the queue that feeds
the worker, with its dead-letter queue.

Kept apart from the API stack so that the API, its functions and the WebSocket can be
destroyed and redeployed freely: sessions, their steps and events, and messages in flight
survive. Termination protection is on and every resource has a pinned logical id.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import QueueConfig
from infra.stacks.data import pin

OWNER_INDEX = "by-owner"

# SQS's ceiling for a visibility timeout.
_MAX_VISIBILITY = 12 * 60 * 60


def visibility_timeout_seconds(function_timeout_seconds: int) -> int:
    """How long a received message stays hidden from other consumers.

    Six times the consumer's timeout (AWS's guidance for Lambda event sources, so retries of
    a throttled or failed batch cannot overlap a running invocation) and at least 30 s more
    than it, within SQS's 12 hours.
    """
    return min(max(6 * function_timeout_seconds, function_timeout_seconds + 30), _MAX_VISIBILITY)


@dataclass(frozen=True)
class SessionsStackProps:
    """What the sessions stack is built from."""

    queue: QueueConfig
    worker_timeout_seconds: int
    dead_letter_timeout_seconds: int


class SessionsStack(Stack):
    """Table `Sessions` (pk/sk, on demand, PITR, TTL `expires_at`), queue `Sessions` + DLQ.

    Items: `S#<id>`/`META` (the session), `S#<id>`/`STEP#…` and `S#<id>`/`EVT#…` (its steps
    and progress events), `S#<id>`/`SUB#<connection>` and `C#<connection>`/`META` (WebSocket
    subscriptions). Finished sessions expire through `expires_at`.
    """

    def __init__(
        self, scope: Construct, id: str, *, props: SessionsStackProps, description: str
    ) -> None:
        super().__init__(scope, id, description=description, termination_protection=True)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # The AWS managed key: no monthly key fee, and no key policy to maintain.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Listing a caller's sessions, newest first (`GET /sessions`).
        self.table.add_global_secondary_index(
            index_name=OWNER_INDEX,  # as orchestrator.sessions.dynamodb queries it
            partition_key=dynamodb.Attribute(name="owner", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["spec", "status", "version", "updated_at", "reason"],
        )
        pin(self.table, "SessionsTable")

        # Messages that failed `max_receive_count` deliveries; the dead-letter function marks
        # their sessions failed, and they stay here for inspection as long as SQS allows.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            visibility_timeout=Duration.seconds(
                visibility_timeout_seconds(props.dead_letter_timeout_seconds)
            ),
        )
        pin(self.dead_letter_queue, "SessionsDeadLetterQueue")
        pin(self.dead_letter_queue.node.find_child("Policy"), "SessionsDeadLetterQueuePolicy")
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(
                visibility_timeout_seconds(props.worker_timeout_seconds)
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=props.queue.max_receive_count, queue=self.dead_letter_queue
            ),
        )
        pin(self.queue, "SessionsQueue")
        pin(self.queue.node.find_child("Policy"), "SessionsQueuePolicy")

        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "QueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
