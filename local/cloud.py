"""The local stand-ins for SQS and DynamoDB: moto's server on a loopback port.

The same boto3 adapters as in AWS talk to it over HTTP; only the endpoint URL differs. The
queue pollers here do what Lambda's SQS event source does: build the SQS event, call the
handler, delete the messages it did not report as failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from orchestrator.stores.dynamodb import create_table

REGION = "us-east-1"
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalContext:
    """What a Lambda context offers the handlers (Powertools reads these)."""

    budget_seconds: float = 900.0
    function_name: str = "lockgate-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:lockgate-local"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of this invocation's budget."""
        return int((self.budget_seconds - (time.monotonic() - self.started)) * 1000)


@dataclass(frozen=True)
class LocalCloud:
    """Endpoint, table and queues of a local moto server."""

    endpoint: str
    table: str
    queue_url: str
    dlq_url: str

    def client(self, service: str) -> Any:
        """A boto3 client for this endpoint."""
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def environment(self) -> dict[str, str]:
        """The variables the handlers read (as the CDK stack sets them in AWS)."""
        return {
            "LOCKGATE_TABLE_NAME": self.table,
            "LOCKGATE_QUEUE_URL": self.queue_url,
            "LOCKGATE_AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def provision_cloud(
    endpoint: str, *, max_receive_count: int = 3, visibility_seconds: int = 30
) -> LocalCloud:
    """Create the table, the queue and its dead-letter queue on the endpoint."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    table = f"lockgate-sessions-{suffix}"
    create_table(dynamodb, table)
    dlq_url = sqs.create_queue(QueueName=f"lockgate-dead-letters-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"lockgate-sessions-{suffix}",
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return LocalCloud(endpoint, table, queue_url, dlq_url)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        os.environ.setdefault(name, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    ),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePoller:
    """Lambda's SQS event source, locally: receive, invoke, delete what succeeded."""

    def __init__(self, client: Any, queue_url: str, handler: Handler, *, batch: int = 5) -> None:
        self.client, self.queue_url, self.handler, self.batch = client, queue_url, handler, batch
        self.arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll_once(self, wait_seconds: int = 0, context: Any = None) -> int:
        """Handle one batch; returns how many messages were received."""
        received = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        response = self.handler(sqs_event(received, self.arn), context or LocalContext())
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        for message in received:
            if message["MessageId"] not in failed:
                self.client.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(received)
