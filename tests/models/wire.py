"""A provider on 127.0.0.1: a tiny HTTP server that answers with the provider's wire format.

Each test queues the replies (status, headers, JSON body) or gives a function that builds one
from the request (to play a whole session); every request the real SDK client sends is kept
with its path, headers and JSON body, so tests assert on what the provider was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sent:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Provider:
    """What the server answers and what it was sent."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    play: Callable[[dict[str, Any]], Reply] | None = None
    sent: list[Sent] = field(default_factory=list)

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        if self.replies:
            return self.replies.pop(0)
        if self.play is not None:
            return self.play(body)
        return Reply({"error": {"message": "no reply queued"}}, status=500)


@contextmanager
def provider_server() -> Iterator[Provider]:
    """Serve on a free loopback port for the block."""
    state: Provider

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            body = json.loads(raw or b"{}")
            state.sent.append(
                Sent(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            reply = state.next_reply(body)
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Provider(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps:
    """An injected sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# -- OpenAI Chat Completions ------------------------------------------------------------------


def openai_reply(
    *,
    content: str | None = None,
    tool_calls: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    finish: str | None = None,
    refusal: str | None = None,
    usage: tuple[int, int, int] = (120, 30, 0),
) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in tool_calls
        ]
    prompt, completion, cached = usage
    return Reply(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "local-model",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish or ("tool_calls" if tool_calls else "stop"),
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    )


def openai_error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        {"error": {"message": f"status {status}", "type": "server_error", "code": None}},
        status=status,
        headers=headers or {},
    )


# -- Anthropic Messages ------------------------------------------------------------------------


def anthropic_reply(
    *,
    text: str | None = None,
    tool_uses: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
    stop: str | None = None,
    usage: tuple[int, int, int, int] = (150, 25, 0, 0),
) -> Reply:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    for tid, name, value in tool_uses:
        content.append({"type": "tool_use", "id": tid, "name": name, "input": value})
    inp, out, read, write = usage
    return Reply(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": content,
            "stop_reason": stop or ("tool_use" if tool_uses else "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": inp,
                "output_tokens": out,
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
            },
        }
    )


def anthropic_error(status: int, headers: dict[str, str] | None = None) -> Reply:
    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    return Reply(
        {"type": "error", "error": {"type": kind, "message": f"status {status}"}},
        status=status,
        headers=headers or {},
    )
