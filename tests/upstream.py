"""A fault-injecting HTTP upstream on loopback: answers each request from a schedule."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from local.weather import forecast_for


@dataclass(frozen=True)
class Fault:
    """One scheduled answer: an HTTP status (with optional Retry-After), a delay before OK, or
    a 200 with this exact `body` instead of the forecast."""

    status: int = 200
    retry_after: int | None = None
    delay: float = 0.0
    body: bytes | None = None


OK = Fault()


def seeded_schedule(seed: int, *, hang: float, slow: float) -> list[Fault]:
    """Zero to three faults drawn from the seed, then OK."""
    rng = random.Random(seed)
    kinds = [
        Fault(429, retry_after=1),
        Fault(502),
        Fault(503),
        Fault(504),
        Fault(delay=hang),
        Fault(delay=slow),
    ]
    faults = [rng.choice(kinds) for _ in range(rng.randint(0, 3))]
    return [*faults, OK]


class FaultyUpstream:
    """Serves `/forecast` per the schedule; after it runs out, always the last entry."""

    def __init__(self, schedule: list[Fault]) -> None:
        self.schedule = list(schedule)
        self.requests = 0
        self.url = ""

    def next_fault(self) -> Fault:
        fault = self.schedule[min(self.requests, len(self.schedule) - 1)]
        self.requests += 1
        return fault


@contextmanager
def faulty_upstream(schedule: list[Fault]) -> Iterator[FaultyUpstream]:
    upstream = FaultyUpstream(schedule)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fault = upstream.next_fault()
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status != 200:
                self.send_response(fault.status)
                if fault.retry_after is not None:
                    self.send_header("Retry-After", str(fault.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            query = parse_qs(urlparse(self.path).query)
            body = (
                fault.body
                or json.dumps(forecast_for(query["airport"][0], query["date"][0])).encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client timed out and went away
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
