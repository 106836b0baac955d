"""Local sessions API: throughput and latency of whole sessions through `lockgate serve`'s
stack (HTTP → API handler → state backend → worker threads → in-process tools → PostgreSQL),
with the durable PostgreSQL state (the default) against the moto-backed DynamoDB/SQS state
(the earlier design, kept as `--state moto`) measured in the same run, at 4, 16 and 64
concurrent clients.

Each session is the demo (5 steps, 3 tool calls, one booking, a zero-latency scripted model),
created with `Prefer: wait=25` so the request returns when the session has finished (one that
has not is then polled until it has): its latency is the end-to-end time a client sees, and
throughput counts finished sessions. `--soak SECONDS` then runs the PostgreSQL state
with 4 clients for that long and samples the process's resident memory (RSS) after every
200 sessions.
Runs against a throwaway embedded PostgreSQL in a temporary `LOCKGATE_HOME` (or
`LOCKGATE_DATABASE_URL`).

    python -m bench.api_throughput [--clients 4 16 64] [--soak 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench._common import table, write_results

STATES = ("postgres", "moto")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rss_mb() -> float:
    """This process's resident set size, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _scratch_home() -> None:
    if "LOCKGATE_HOME" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="lockgate-bench-")
        os.chmod(scratch, 0o755)  # the PostgreSQL server user must reach its data
        os.environ["LOCKGATE_HOME"] = scratch
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def _sessions(url: str, headers: dict[str, str], count: int, clients: int) -> dict[str, Any]:
    """`count` demo sessions from `clients` concurrent clients, each on its own connection."""
    local = threading.local()

    def one(_: int) -> tuple[float, str]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers=headers, timeout=120)
        begin = time.perf_counter()
        view = local.client.post(
            "/sessions", json={"request": "book Ada"}, headers={"Prefer": "wait=25"}
        ).json()
        # Not finished within the wait: follow it until it is (or 10 minutes have passed).
        while view.get("status") in {"queued", "running"} and time.perf_counter() - begin < 600:
            time.sleep(0.5)
            view = local.client.get(f"/sessions/{view['session_id']}").json()
        return time.perf_counter() - begin, view.get("status", "?")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    latencies = [seconds for seconds, _ in results]
    return {
        "clients": clients,
        "sessions": count,
        "completed": sum(1 for _, status in results if status == "completed"),
        "sessions_per_second": count / elapsed,
        "latency_seconds": {
            "p50": statistics.median(latencies),
            "p95": _percentile(latencies, 0.95),
            "max": max(latencies),
        },
    }


def measure(state: str, clients: list[int], per_client: int, soak: float = 0) -> dict[str, Any]:
    """Start the local stack on one state backend, measure each concurrency, stop it."""
    from local.auth import issue_token
    from local.cli import DEMO_SCRIPT
    from local.serve import local_stack
    from local.stack import home

    _scratch_home()
    with local_stack(f"scripted:{DEMO_SCRIPT}", state=state) as url:  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {issue_token(home(), 'alice')}"}
        _sessions(url, headers, 8, 4)  # warm: imports, connections, first tool environments
        runs = [_sessions(url, headers, max(32, per_client * c), c) for c in clients]
        samples: list[dict[str, float]] = []
        if soak:
            begin = time.monotonic()
            while (elapsed := time.monotonic() - begin) < soak:
                window = _sessions(url, headers, 200, 4)
                samples.append(
                    {
                        "seconds": round(elapsed, 1),
                        "rss_mb": rss_mb(),
                        "sessions_per_second": window["sessions_per_second"],
                    }
                )
    return {"state": state, "runs": runs, "soak": samples}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both states, print the comparison, write the JSON results."""
    _scratch_home()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--per-client", type=int, default=2, help="sessions per client")
    parser.add_argument("--soak", type=float, default=0, help="seconds of the RSS soak")
    parser.add_argument("--states", nargs="+", default=list(STATES), choices=STATES)
    args = parser.parse_args(argv)
    results = {
        state: measure(
            state, args.clients, args.per_client, args.soak if state == "postgres" else 0
        )
        for state in args.states
    }
    rows = []
    for index, clients in enumerate(args.clients):
        row: list[str] = [str(clients)]
        for state in args.states:
            run = results[state]["runs"][index]
            row += [
                f"{run['sessions_per_second']:.1f}/s",
                f"{run['latency_seconds']['p50'] * 1000:.0f} ms",
                f"{run['completed']}/{run['sessions']}",
            ]
        if set(STATES) <= set(args.states):
            fast, slow = results["postgres"]["runs"][index], results["moto"]["runs"][index]
            row += [
                f"{fast['sessions_per_second'] / slow['sessions_per_second']:.1f}x",
                f"{fast['latency_seconds']['p50'] / slow['latency_seconds']['p50']:.3f}",
            ]
        rows.append(row)
    headers = ["clients"]
    for state in args.states:
        headers += [f"{state} throughput", f"{state} p50", f"{state} completed"]
    if set(STATES) <= set(args.states):
        headers += ["throughput ratio", "p50 ratio"]
    print("local API: demo sessions (5 steps), postgres state vs moto state, same run\n")
    print(table(headers, rows))
    soak = results.get("postgres", {}).get("soak") or []
    if soak:
        first, last = soak[0]["rss_mb"], soak[-1]["rss_mb"]
        print(
            f"\nsoak: {soak[-1]['seconds']:.0f} s at 4 clients; RSS {first:.0f} MB -> {last:.0f} MB"
            f" ({(last - first) / first * 100:+.1f}%), max {max(s['rss_mb'] for s in soak):.0f} MB;"
            f" throughput {soak[0]['sessions_per_second']:.1f}/s ->"
            f" {soak[-1]['sessions_per_second']:.1f}/s"
        )
    print(f"\nresults: {write_results('api_throughput', results)}")
    return results


if __name__ == "__main__":
    main()
