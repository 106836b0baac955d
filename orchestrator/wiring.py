"""The one place where the orchestrator's dependencies are built from settings.

Lambda entry points and `lockgate serve` both call these; local mode passes its own invoker
and models (adapters), never different logic.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from orchestrator.limits import Limits
from orchestrator.pricing import PriceTable
from orchestrator.sessions.checkpoints import Observer
from orchestrator.sessions.ports import PullQueue, SessionRepository, Subscriptions
from orchestrator.sessions.record import SessionRecord
from orchestrator.sessions.service import CHANGES, SessionService
from orchestrator.settings import PROVIDER_KEY_PLACEHOLDER, OrchestratorSettings

# The loop, the catalog and the tool contracts are the worker's alone: the API, dead-letter
# and WebSocket functions never load them. The worker's entry point imports them itself.
if TYPE_CHECKING:
    from orchestrator.ports import EventPublisher, Model, SessionStore, ToolInvoker
    from orchestrator.sessions.worker import Worker
    from tools.kit.contract import ToolSpec

ModelFactory = Callable[[str], "Model"]


@cache
def settings() -> OrchestratorSettings:
    """Read once per process (Lambda cold start)."""
    return OrchestratorSettings.from_env()


def client(service: str, config: OrchestratorSettings, *, retries: bool = True) -> Any:
    """A boto3 client; pointed at the local endpoint when one is configured. Without
    `retries`, botocore makes one attempt and Lockgate's own retry policy decides."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {}
    if not retries:
        options["config"] = Config(retries={"total_max_attempts": 1})
    if config.aws_endpoint_url:
        options["endpoint_url"] = config.aws_endpoint_url
    return boto3.client(service, **options)


_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def _postgres_pool(url: str) -> Any:
    """One connection pool per database URL and process."""
    from orchestrator.sessions.postgres import pool

    with _pools_lock:
        if url not in _pools:
            _pools[url] = pool(url)
        return _pools[url]


@cache
def _memory(
    visibility_seconds: float, max_receive_count: int
) -> tuple[SessionRepository, PullQueue]:
    """One process's sessions and queue, shared by its API and its worker."""
    from orchestrator.sessions.memory import MemoryQueue, MemorySessions

    queue = MemoryQueue(visibility_seconds=visibility_seconds, max_receive_count=max_receive_count)
    return MemorySessions(), queue


def close() -> None:
    """Close the runtime's database connections and forget in-memory state (end of a local
    stack; a Lambda process never needs to)."""
    with _pools_lock:
        for opened in _pools.values():
            opened.close()
        _pools.clear()
    _memory.cache_clear()


def repository(config: OrchestratorSettings) -> SessionRepository:
    """Where sessions live, by `sessions_backend`."""
    if config.sessions_backend == "postgres":
        from orchestrator.sessions.postgres import PostgresSessions

        return PostgresSessions(_postgres_pool(config.sessions_database_url))
    if config.sessions_backend == "memory":
        return _memory(config.visibility_seconds, config.max_receive_count)[0]
    from orchestrator.sessions.dynamodb import DynamoSessions

    return DynamoSessions(
        config.table_name, client("dynamodb", config), config.session_retention_days
    )


def queue(config: OrchestratorSettings) -> PullQueue:
    """The work queue, by `sessions_backend`."""
    if config.sessions_backend == "postgres":
        from orchestrator.sessions.postgres import PostgresQueue

        return PostgresQueue(
            _postgres_pool(config.sessions_database_url),
            visibility_seconds=config.visibility_seconds,
            max_receive_count=config.max_receive_count,
        )
    if config.sessions_backend == "memory":
        return _memory(config.visibility_seconds, config.max_receive_count)[1]
    from orchestrator.sessions.sqs import SqsQueue

    return SqsQueue(config.queue_url, client("sqs", config), config.dead_letter_queue_url or None)


def subscriptions(config: OrchestratorSettings) -> Subscriptions:
    """WebSocket subscriptions (the cloud's push), in the sessions table."""
    from orchestrator.sessions.dynamodb import DynamoSubscriptions

    return DynamoSubscriptions(config.table_name, client("dynamodb", config))


def session_service(config: OrchestratorSettings) -> SessionService:
    """What the API does, over this deployment's repository and queue."""
    return SessionService(
        repo=repository(config),
        queue=queue(config),
        default_model=config.model_id,
        allowed_models=list(config.allowed_models),
        max_wait_seconds=config.max_wait_seconds,
    )


def base_limits(config: OrchestratorSettings) -> Limits:
    """The deployment's limits; a session's options can only tighten them."""
    return Limits(
        max_steps=config.max_steps,
        max_tokens=config.max_tokens,
        max_usd=config.max_usd,
        max_seconds=config.max_seconds,
    )


def price_table(config: OrchestratorSettings) -> PriceTable:
    """The default prices with this deployment's `LOCKGATE_PRICES` over them."""
    return PriceTable.with_overrides(config.prices)


@cache
def _secrets(endpoint_url: str) -> Any:
    """One Powertools secrets provider per process (and endpoint): it caches what it read.
    A key it reads never reaches a log, whatever level the function logs at."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from tools.kit.redact import hide_secret_values

    hide_secret_values()
    options = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return SecretsProvider(boto3_client=boto3.client("secretsmanager", **options))


def provider_key(provider: str, config: OrchestratorSettings) -> str | None:
    """The deployment's API key for `provider` from its Secrets Manager secret, or None when
    none is configured (the SDK then reads its own variables). Read on first use and reused
    for `provider_secret_max_age_seconds`; handed to the SDK client only, never to the
    environment or a log."""
    arn = config.provider_secret(provider)
    if arn is None:
        return None
    value = _secrets(config.aws_endpoint_url).get(
        arn, max_age=config.provider_secret_max_age_seconds
    )
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str) or value.strip() in ("", PROVIDER_KEY_PLACEHOLDER):
        raise ValueError(
            f"the {provider} key secret holds no key yet: put it with "
            "`aws secretsmanager put-secret-value`"
        )
    # A pasted key often ends in a newline, which no HTTP header may carry.
    return value.strip()


def provider_model(model_id: str) -> Model:
    """The default model factory: `bedrock:`/bare ids (Bedrock Converse, prompt caching as
    configured), `openai:` and `anthropic:` (their SDKs must be in the function's package;
    the key comes from the provider's secret when the deployment configures one)."""
    from orchestrator.models.specs import model_from_spec, parse_spec

    config = settings()
    provider, _ = parse_spec(model_id)
    return model_from_spec(
        model_id, prompt_cache=config.prompt_cache, api_key=provider_key(provider, config)
    )


def lambda_invoker(config: OrchestratorSettings) -> ToolInvoker:
    """Each tool's own Lambda function."""
    from orchestrator.invokers.lambda_ import LambdaInvoker

    # Transient tool failures (throttling included) are retried once, by the orchestrator.
    return LambdaInvoker(config.tool_functions, client("lambda", config, retries=False))


def worker(
    config: OrchestratorSettings,
    *,
    invoker: ToolInvoker | None = None,
    models: ModelFactory = provider_model,
    push: Observer | None = None,
    contracts: Sequence[ToolSpec] | None = None,
) -> Worker:
    """A worker wired for this deployment (or for the local stack), offering `contracts`
    (by default every registered tool)."""
    from orchestrator.catalog import Catalog
    from orchestrator.loop import Orchestrator
    from orchestrator.sessions.metrics import record_metrics
    from orchestrator.sessions.worker import Worker

    if contracts is None:
        from tools.registry import CONTRACTS

        contracts = CONTRACTS
    tools = invoker or lambda_invoker(config)
    catalog = Catalog(contracts)
    limits = base_limits(config)
    prices = price_table(config)

    def build(record: SessionRecord, store: SessionStore, events: EventPublisher) -> Orchestrator:
        synthesizer = config.synthesizer_model_id
        return Orchestrator(
            catalog=catalog,
            model=models(record.options.model or config.model_id),
            synthesizer=models(synthesizer) if synthesizer else None,
            invoker=tools,
            store=store,
            events=events,
            limits=record.options.limits(limits),
            prices=prices,
        )

    observers: list[Observer] = [record_metrics, CHANGES.notify]
    if push is not None:
        observers.append(push)
    elif config.websocket_endpoint:
        import boto3

        from orchestrator.sessions.push import WebSocketPush

        management = boto3.client("apigatewaymanagementapi", endpoint_url=config.websocket_endpoint)
        observers.append(WebSocketPush(subscriptions(config), management))

    def after_checkpoint(record: SessionRecord, events: list[dict[str, Any]]) -> None:
        for observe in observers:
            observe(record, events)

    return Worker(
        repo=repository(config),
        queue=queue(config),
        build=build,
        worker_id=uuid.uuid4().hex,
        lease_seconds=config.lease_seconds,
        reserve_seconds=config.reserve_seconds,
        push=after_checkpoint,
    )
