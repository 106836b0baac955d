"""API Gateway, locally: HTTP on 127.0.0.1 turned into REST proxy events for the same API
handler that runs in Lambda.

What the gateway does before the Lambda runs is done here too: the bearer token is verified
(as the Cognito authorizer does) and its claims passed on in `requestContext.authorizer`;
a method a resource does not have is refused (405 with `Allow`); a request body is always
read whole (or the connection closed), so a kept-open connection never parses a body as the
next request. `GET /sessions/{id}/stream` (local only) streams a session's events as
server-sent events, after the same ownership check as every other route.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

from local.auth import verify_token
from local.cloud import LocalContext
from orchestrator.sessions.service import CHANGES

MAX_BODY_BYTES = 1_048_576
STREAM_SECONDS = 600
# Resources and their methods, as the REST API defines them (infra/stacks/api.py).
ROUTES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"^/health$"), ("GET",)),
    (re.compile(r"^/sessions$"), ("GET", "POST")),
    (re.compile(r"^/sessions/[^/]+$"), ("GET",)),
    (re.compile(r"^/sessions/[^/]+/events$"), ("GET",)),
    (re.compile(r"^/sessions/[^/]+/cancel$"), ("POST",)),
    (re.compile(r"^/sessions/[^/]+/stream$"), ("GET",)),
)
_JSON = {"Content-Type": "application/json"}


def allowed_methods(path: str) -> tuple[str, ...] | None:
    """The methods of the resource at `path`, or None if there is no such resource."""
    for pattern, methods in ROUTES:
        if pattern.match(path):
            return methods
    return None


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


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # many clients connecting at once are queued, not reset


@dataclass
class LocalGateway:
    """The HTTP front door of the local stack."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 8787
    stopping: threading.Event = field(default_factory=threading.Event)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

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

            def _send_json(self, status: int, body: Any, **headers: str) -> None:
                self._send(status, {**_JSON, **headers}, json.dumps(body).encode())

            def _body(self) -> str | None:
                """The whole request body (read before any answer is given)."""
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    raise _BadBody(411, "chunked bodies are not accepted; send Content-Length")
                raw = self.headers.get("Content-Length")
                if raw is None:
                    return None
                try:
                    length = int(raw)
                except ValueError:
                    raise _BadBody(400, "Content-Length is not a number") from None
                if length < 0:
                    raise _BadBody(400, "Content-Length is negative")
                if length > MAX_BODY_BYTES:
                    raise _BadBody(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
                data = self.rfile.read(length)
                if len(data) < length:
                    raise _BadBody(400, "the body ended before Content-Length bytes")
                try:
                    return data.decode() if data else None
                except UnicodeDecodeError:
                    raise _BadBody(400, "the body is not valid UTF-8") from None

            def _route(self) -> None:
                method = self.command
                url = urlparse(self.path)
                try:
                    body = self._body()
                except _BadBody as exc:
                    self.close_connection = True
                    self._send_json(exc.status, {"message": str(exc)}, Connection="close")
                    return
                methods = allowed_methods(url.path)
                if methods is not None and method not in methods:
                    self._send_json(
                        405, {"message": f"{method} is not allowed here"}, Allow=", ".join(methods)
                    )
                    return
                if url.path == "/health":
                    self._send_json(200, {"status": "ok"})
                    return
                claims = verify_token(gateway.home, self.headers.get("Authorization"))
                if claims is None:  # what API Gateway answers before the Lambda runs
                    self._send_json(401, {"message": "Unauthorized"})
                    return
                if url.path.endswith("/stream"):
                    self._stream(url.path.removesuffix("/stream"), claims)
                    return
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
                self._send(status, {**_JSON, **headers}, payload)

            def _stream(self, session_path: str, claims: dict[str, Any]) -> None:
                """Server-sent events: every stored event as it is checkpointed."""
                status, _, view = call_api(api_event("GET", session_path, claims=claims))
                if status != 200:  # not found, or not the caller's: the same answer as GET
                    self._send_json(status, view)
                    return
                session_id = view["session_id"]
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                after, deadline = 0, time.monotonic() + STREAM_SECONDS
                while time.monotonic() < deadline and not gateway.stopping.is_set():
                    token = CHANGES.token(session_id)
                    event = api_event(
                        "GET", f"{session_path}/events", claims=claims, query={"after": str(after)}
                    )
                    status, _, page = call_api(event)
                    if status != 200:
                        return
                    for item in page["events"]:
                        self.wfile.write(
                            f"id: {item['seq']}\nevent: {item['kind']}\n"
                            f"data: {json.dumps(item)}\n\n".encode()
                        )
                        after = item["seq"]
                    self.wfile.flush()
                    if page["status"] not in {"queued", "running"} and not page["events"]:
                        return
                    if not page["events"]:
                        CHANGES.wait(session_id, token, 0.5)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches `_route`, which answers 405 for what a resource lacks
                # (the standard library would answer 501 with an HTML page).
                if name.startswith("do_"):
                    return self._route
                raise AttributeError(name)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet; the API handler logs."""

        return Handler

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Serve HTTP for the block; yields the base URL."""
        httpd = _Server((self.host, self.port), self.handler_class())
        self.port = int(httpd.server_address[1])
        thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
        thread.start()
        try:
            yield f"http://{self.host}:{self.port}"
        finally:
            self.stopping.set()
            httpd.shutdown()
            httpd.server_close()
