"""Dead-letter Lambda: a session whose message kept failing is marked failed, with the reason."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from orchestrator import wiring
from orchestrator.sessions.ports import session_id_of

logger = Logger(service="lockgate-dead-letters")


def record_handler(record: SQSRecord) -> None:
    """Mark the session failed; a message with no session id is logged and dropped."""
    try:
        session_id = session_id_of(record.body)
    except ValueError:
        logger.error("dead letter without a session id", extra={"message_id": record.message_id})
        return
    receives = record.attributes.approximate_receive_count
    reason = f"the worker failed to advance the session {receives} times; it was given up"
    wiring.repository(wiring.settings()).fail(session_id, reason, time.time())
    logger.warning("session failed", extra={"session_id": session_id})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source on the dead-letter queue)."""
    # A processor per invocation (it holds the batch's results); failed messages are
    # reported as batch item failures, even when all of them failed.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
