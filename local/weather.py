"""A local weather service for the local stack: deterministic forecasts on a loopback port.

In the cloud `weather_lookup` calls the API configured in `LOCKGATE_UPSTREAM_URL`; locally
this stands in for it, with the same HTTP contract: `GET /forecast?airport=CDG&date=...`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CONDITIONS = ("clear", "partly cloudy", "overcast", "light rain", "showers", "snow", "fog")


def forecast_for(airport: str, date: str) -> dict[str, object]:
    """The same forecast for the same airport and day, every time."""
    digest = hashlib.sha256(f"{airport}:{date}".encode()).digest()
    return {
        "airport": airport,
        "date": date,
        "temperature_c": round(digest[0] / 255 * 35 - 5, 1),
        "conditions": CONDITIONS[digest[1] % len(CONDITIONS)],
    }


class _Forecasts(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path != "/forecast" or "airport" not in query or "date" not in query:
            self.send_error(404)
            return
        body = json.dumps(forecast_for(query["airport"][0], query["date"][0])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the session trace is the output."""


@contextlib.contextmanager
def weather_service() -> Iterator[str]:
    """Serve forecasts on 127.0.0.1 for the block; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forecasts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
