"""Local sessions API: throughput and latency of whole sessions through `lockgate serve`'s
stack (HTTP → API handler → SQS/DynamoDB on moto's server → worker → in-process tools →
PostgreSQL), against the same HTTP server answering `/health` in the same run.

Each session is the demo (5 steps, 3 tool calls, one booking), created with
`Prefer: wait=20` so the request returns when the session has finished: its latency is the
end-to-end time a client sees. Runs against a throwaway embedded PostgreSQL in a temporary
`LOCKGATE_HOME` (or `LOCKGATE_DATABASE_URL`).

    python -m bench.api_throughput [--sessions 40] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench._common import table, write_results

HEALTH_REQUESTS = 400


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(sessions: int, concurrency: int) -> dict[str, Any]:
    """Start the local stack, measure, stop it."""
    from local.auth import issue_token
    from local.cli import DEMO_SCRIPT
    from local.models import local_model
    from local.serve import LocalServer, Pollers, local_cloud
    from local.stack import database_server, home, provision
    from local.weather import weather_service
    from orchestrator import wiring
    from orchestrator.handlers import worker as worker_handler
    from orchestrator.invokers.in_process import InProcessInvoker

    if "LOCKGATE_HOME" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="lockgate-bench-")
        os.chmod(scratch, 0o755)  # the PostgreSQL server user must reach its data
        os.environ["LOCKGATE_HOME"] = scratch
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["LOCKGATE_MODEL_ID"] = f"scripted:{DEMO_SCRIPT}"
    with database_server() as admin_url, weather_service() as weather_url, local_cloud() as cloud:
        wiring.settings.cache_clear()
        invoker = InProcessInvoker(provision(admin_url, upstream_url=weather_url))
        worker_handler.use(wiring.worker(wiring.settings(), invoker=invoker, models=local_model))
        server = LocalServer(home(), cloud, port=0)
        with server.running() as url, Pollers(cloud).running():
            headers = {"Authorization": f"Bearer {issue_token(home(), 'alice')}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                started = time.perf_counter()
                for _ in range(HEALTH_REQUESTS):
                    client.get("/health")
                health = (time.perf_counter() - started) / HEALTH_REQUESTS

            def one_session(_: int) -> tuple[float, str]:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as own:
                    begin = time.perf_counter()
                    response = own.post(
                        "/sessions", json={"request": "book Ada"}, headers={"Prefer": "wait=20"}
                    )
                    return time.perf_counter() - begin, response.json().get("status", "?")

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(one_session, range(sessions)))
            elapsed = time.perf_counter() - started
        invoker.close()
    latencies = [seconds for seconds, _ in results]
    return {
        "sessions": sessions,
        "concurrency": concurrency,
        "completed": sum(1 for _, status in results if status == "completed"),
        "sessions_per_second": sessions / elapsed,
        "latency_seconds": {
            "p50": statistics.median(latencies),
            "p95": _percentile(latencies, 0.95),
            "max": max(latencies),
        },
        "health_round_trip_seconds": health,
        "p50_over_health": statistics.median(latencies) / health,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    result = measure(args.sessions, args.concurrency)
    latency = result["latency_seconds"]
    print(f"local API: {args.sessions} demo sessions, {args.concurrency} concurrent clients\n")
    print(
        table(
            ["measure", "value"],
            [
                ["sessions completed", f"{result['completed']}/{result['sessions']}"],
                ["throughput", f"{result['sessions_per_second']:.1f} sessions/s"],
                ["end-to-end latency p50", f"{latency['p50'] * 1000:.0f} ms"],
                ["end-to-end latency p95", f"{latency['p95'] * 1000:.0f} ms"],
                [
                    "baseline: GET /health round trip",
                    f"{result['health_round_trip_seconds'] * 1000:.2f} ms",
                ],
                ["p50 session / health round trip", f"{result['p50_over_health']:.0f}x"],
            ],
        )
    )
    print(f"\nresults: {write_results('api_throughput', result)}")
    return result


if __name__ == "__main__":
    main()
