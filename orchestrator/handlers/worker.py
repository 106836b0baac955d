"""Worker Lambda: SQS messages → advance each session; failures reported per message."""

from __future__ import annotations

from functools import cache
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
from orchestrator.sessions.metrics import metrics
from orchestrator.sessions.ports import session_id_of
from orchestrator.sessions.worker import Worker
from tools.registry import CONTRACTS

logger = Logger(service="lockgate-worker")


_configured: list[Worker] = []


def use(worker: Worker | None) -> None:
    """Run with this worker instead of the one wired from the environment (the local stack
    passes in-process tools and local models: adapters, not logic); None goes back."""
    _configured[:] = [] if worker is None else [worker]


@cache
def _wired() -> Worker:
    return wiring.worker(wiring.settings(), contracts=CONTRACTS)


def _worker() -> Worker:
    return _configured[0] if _configured else _wired()


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    """Advance one session; raising marks this message failed (it is retried, then DLQ'd).
    Powertools passes the invocation's context, whose remaining time bounds the work."""
    session_id = session_id_of(record.body)
    logger.thread_safe_append_keys(session_id=session_id)
    outcome = _worker().advance(
        session_id,
        remaining_seconds=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("session advanced", extra={"result": outcome})
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    # A processor per invocation: it holds the batch's results, and local pollers invoke
    # from several threads. Failed messages are reported as batch item failures, even when
    # all of them failed.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
