"""CloudWatch metrics (Powertools Metrics, embedded metric format) from a session's events.

Called after every checkpoint with the events it wrote, so each event is counted once even
when a session spans several invocations. The worker handler flushes at the end of each
invocation. Namespace `Lockgate`, dimension `service` (`lockgate-worker`); `Sessions` also
carries an `outcome` dimension.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from orchestrator.sessions.record import SessionRecord

NAMESPACE = "Lockgate"
metrics = Metrics(namespace=NAMESPACE, service="lockgate-worker")

_COUNTS = {
    "model_proposed": "Steps",
    "validation_failed": "ValidationFailures",
    "tool_result": "ToolCalls",
    "tool_retry": "ToolRetries",
}


def record_metrics(record: SessionRecord, events: list[dict[str, Any]]) -> None:
    """Add the metrics of one checkpoint's events (none while metrics are disabled: Powertools
    would still print a full metric set, and `single_metric` always prints)."""
    if is_metrics_disabled():
        return
    for event in events:
        kind, data = event["kind"], event["data"]
        if kind in _COUNTS:
            metrics.add_metric(name=_COUNTS[kind], unit=MetricUnit.Count, value=1)
        if kind == "tool_result" and data.get("status") == "error":
            metrics.add_metric(name="ToolErrors", unit=MetricUnit.Count, value=1)
        if kind in {"final", "stopped"}:
            if kind == "final":
                metrics.add_metric(name="Steps", unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name="InputTokens", unit=MetricUnit.Count, value=data["input_tokens"]
            )
            metrics.add_metric(
                name="OutputTokens", unit=MetricUnit.Count, value=data["output_tokens"]
            )
            metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=data["cost_usd"])
            with single_metric(
                name="Sessions", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
            ) as sessions:
                sessions.add_dimension(name="outcome", value=str(data["outcome"]))
