"""`lockgate serve`: the sessions API on 127.0.0.1, the same handlers as in AWS.

- HTTP requests become API Gateway (REST) events for `orchestrator.handlers.api.handler`;
  the bearer token is verified here, as the Cognito authorizer does in AWS, and its claims
  are passed on the same way (`requestContext.authorizer.claims`).
- SQS and DynamoDB are moto's server on a loopback port; a worker thread polls the queue and
  calls `orchestrator.handlers.worker.handler`, another polls the dead-letter queue.
- Tools run in-process on the local PostgreSQL, each on its own role.
- `GET /sessions/{id}/stream` streams the session's events as server-sent events.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

from local.auth import verify_token
from local.cloud import LocalCloud, LocalContext, QueuePoller, moto_server, provision_cloud
from local.users import LOCAL_USERS


def api_event(
    method: str,
    path: str,
    *,
    claims: Mapping[str, Any] | None,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as the Cognito-authorized API sends it."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers or {}),
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "local",
            "requestId": uuid.uuid4().hex,
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"claims": dict(claims or {})},
        },
    }


def call_api(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Run the API handler on an event: status, headers, parsed JSON body."""
    from orchestrator.handlers.api import handler

    response = handler(event, LocalContext(function_name="lockgate-api"))  # type: ignore[arg-type]  # duck-typed Lambda context
    body = response.get("body")
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, ", ".join(values))
    return int(response["statusCode"]), headers, json.loads(body) if body else None


@dataclass
class LocalServer:
    """The HTTP front door of the local stack."""

    home: Path
    cloud: LocalCloud
    host: str = "127.0.0.1"
    port: int = 8787

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                if url.path == "/health":
                    self._send(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')
                    return
                claims = verify_token(server.home, self.headers.get("Authorization"))
                if claims is None:  # what API Gateway answers before the Lambda runs
                    self._send(
                        401, {"Content-Type": "application/json"}, b'{"message": "Unauthorized"}'
                    )
                    return
                if method == "GET" and url.path.endswith("/stream"):
                    self._stream(url.path.removesuffix("/stream"), claims)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else None
                event = api_event(
                    method,
                    url.path,
                    claims=claims,
                    body=body,
                    headers=dict(self.headers.items()),
                    query=dict(parse_qsl(url.query)) or None,
                )
                status, headers, parsed = call_api(event)
                payload = json.dumps(parsed).encode() if parsed is not None else b""
                self._send(status, {"Content-Type": "application/json", **headers}, payload)

            def _stream(self, session_path: str, claims: dict[str, Any]) -> None:
                """Server-sent events: every stored event as it is checkpointed."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                after, deadline = 0, time.monotonic() + 600
                while time.monotonic() < deadline:
                    event = api_event(
                        "GET", f"{session_path}/events", claims=claims, query={"after": str(after)}
                    )
                    status, _, body = call_api(event)
                    if status != 200:
                        self.wfile.write(f"event: error\ndata: {json.dumps(body)}\n\n".encode())
                        return
                    for item in body["events"]:
                        self.wfile.write(
                            f"id: {item['seq']}\nevent: {item['kind']}\ndata: {json.dumps(item)}\n\n".encode()
                        )
                        after = item["seq"]
                    self.wfile.flush()
                    if body["status"] not in {"queued", "running"} and not body["events"]:
                        return
                    time.sleep(0.2)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def log_message(self, format: str, *args: object) -> None:
                """Quiet; the API handler logs."""

        return Handler

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve HTTP for the block; yields the base URL."""
        httpd = ThreadingHTTPServer((self.host, self.port), self.handler_class())
        httpd.daemon_threads = True
        self.port = int(httpd.server_address[1])
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{self.host}:{self.port}"
        finally:
            httpd.shutdown()
            httpd.server_close()


class Pollers:
    """The worker and dead-letter pollers, on background threads."""

    def __init__(self, cloud: LocalCloud) -> None:
        from orchestrator.handlers import dlq, worker

        sqs = cloud.client("sqs")
        self.work = QueuePoller(sqs, cloud.queue_url, worker.handler)
        self.dead = QueuePoller(sqs, cloud.dlq_url, dlq.handler)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self.work,), daemon=True),
            threading.Thread(target=self._loop, args=(self.dead,), daemon=True),
        ]

    def _loop(self, poller: QueuePoller) -> None:
        while not self._stop.is_set():
            try:
                poller.poll_once(wait_seconds=1)
            except Exception:  # a poller must survive whatever one batch did; the handler logged it
                time.sleep(0.5)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Poll for the block."""
        for thread in self._threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=5)


@contextlib.contextmanager
def local_cloud(max_receive_count: int = 3, visibility_seconds: int = 30) -> Iterator[LocalCloud]:
    """moto's server with the table and queues, and the environment pointing at them."""
    with moto_server() as endpoint:
        cloud = provision_cloud(
            endpoint, max_receive_count=max_receive_count, visibility_seconds=visibility_seconds
        )
        previous = {k: os.environ.get(k) for k in cloud.environment()}
        os.environ.update(cloud.environment())
        try:
            yield cloud
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def serve(port: int, model: str, out: Any) -> int:
    """Run the local stack until interrupted (Ctrl-C or SIGTERM)."""
    import signal

    from local.models import local_model
    from local.stack import database_server, home, provision
    from local.weather import weather_service
    from orchestrator import wiring
    from orchestrator.handlers import worker as worker_handler
    from orchestrator.invokers.in_process import InProcessInvoker

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["LOCKGATE_MODEL_ID"] = model
    # Metrics are CloudWatch EMF lines on stdout: noise on a terminal.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with database_server() as admin_url, weather_service() as weather_url, local_cloud() as cloud:
        wiring.settings.cache_clear()
        invoker = InProcessInvoker(provision(admin_url, upstream_url=weather_url))
        worker_handler.use(wiring.worker(wiring.settings(), invoker=invoker, models=local_model))
        server = LocalServer(home(), cloud, port=port)
        try:
            with server.running() as url, Pollers(cloud).running():
                print(f"lockgate serve: {url} (model {model})", file=out, flush=True)
                for user in LOCAL_USERS:
                    print(f"  token for {user}: lockgate token --user {user}", file=out, flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", file=out, flush=True)
        finally:
            invoker.close()
    return 0
