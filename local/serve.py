"""`lockgate serve`: the sessions API on 127.0.0.1, the same handlers as in AWS.

- `local.gateway`: HTTP → API Gateway events for `orchestrator.handlers.api.handler`, with
  the bearer token verified as the Cognito authorizer does in AWS.
- `local.cloud`: where sessions and the work queue live (`--state postgres`, the default,
  durable across restarts; or `--state moto`, the cloud's DynamoDB/SQS adapters on moto's
  server), and the worker and dead-letter pollers calling the worker and DLQ handlers.
- Tools run in-process on the local PostgreSQL, each on its own role.

Stopping (Ctrl-C or SIGTERM) takes at most about two seconds: sessions in progress are
checkpointed at their current step and resume at the next start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from local.cloud import LocalState, Pollers, StateBackend, environment, moto_state, postgres_state
from local.gateway import LocalGateway
from local.users import LOCAL_USERS


@contextlib.contextmanager
def local_state(
    backend: StateBackend, admin_url: str, *, visibility_seconds: float = 900.0
) -> Iterator[LocalState]:
    """The chosen state backend, with the environment pointing the handlers at it."""
    from local.stack import role_passwords

    if backend == "moto":
        manager: contextlib.AbstractContextManager[LocalState] = moto_state()
    else:
        from local.cloud import RUNTIME_ROLE

        password = role_passwords([RUNTIME_ROLE])[RUNTIME_ROLE]
        manager = postgres_state(admin_url, password, visibility_seconds=visibility_seconds)
    with manager as state, environment(state.environment()):
        yield state


@contextlib.contextmanager
def local_stack(
    model: str, *, state: StateBackend = "postgres", workers: int = 4, port: int = 0
) -> Iterator[str]:
    """The whole local stack for the block (database, tools, state, pollers, HTTP); yields
    the base URL. The database server is stopped after if this block started it. The moto
    state runs one worker, as the earlier design did: moto's server is not safe under
    concurrent transactions."""
    from local.models import local_model
    from local.stack import database_server, home, provision, upstream_services
    from orchestrator import wiring
    from orchestrator.handlers import api, dlq
    from orchestrator.handlers import worker as worker_handler
    from orchestrator.invokers.in_process import InProcessInvoker

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    # Metrics are CloudWatch EMF lines on stdout: noise on a terminal.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", "No application metrics to publish")
    with (
        database_server() as admin_url,
        upstream_services() as upstreams,
        environment({"LOCKGATE_MODEL_ID": model}),
        local_state(state, admin_url) as _,
    ):
        wiring.settings.cache_clear()
        api._service.cache_clear()
        invoker = InProcessInvoker(provision(admin_url, upstreams=upstreams))
        config = wiring.settings()
        worker_handler.use(wiring.worker(config, invoker=invoker, models=local_model))
        pollers = Pollers(
            wiring.queue(config),
            worker_handler.handler,
            dlq.handler,
            workers=1 if state == "moto" else workers,
        )
        gateway = LocalGateway(home(), port=port)
        try:
            with pollers.running(), gateway.running() as url:
                yield url
        finally:
            invoker.close()
            worker_handler.use(None)
            api._service.cache_clear()
            wiring.close()
            wiring.settings.cache_clear()


def serve(
    port: int, model: str, out: Any, *, state: StateBackend = "postgres", workers: int = 4
) -> int:
    """Run the local stack until interrupted (Ctrl-C or SIGTERM)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with local_stack(model, state=state, workers=workers, port=port) as url:
        print(f"lockgate serve: {url} (model {model}, state {state})", file=out, flush=True)
        for user in LOCAL_USERS:
            print(f"  token for {user}: lockgate token --user {user}", file=out, flush=True)
        stop.wait()
        print("stopping", file=out, flush=True)
    return 0
