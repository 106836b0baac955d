"""`lockgate run --api URL`: the same session through a running `lockgate serve`, over HTTP.

Creates the session, follows its server-sent events with the same step trace as a local run,
then reads the final status. Standard library only (urllib), as a thin client should be.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any, TextIO

from local.auth import issue_token
from local.models import UsageError
from local.stack import home
from local.trace import TracePrinter
from local.users import LOCAL_USERS
from orchestrator.ports import Event

TERMINAL = {"completed", "stopped", "cancelled", "failed"}


def _call(url: str, token: str, method: str = "GET", body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310  # the caller names a local server
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        parsed: dict[str, Any] = json.loads(response.read())
        return parsed


def run_via_api(base: str, request: str, user: str, out: TextIO, *, as_json: bool) -> int:
    """Run one session through the API; exit code 0 when it completed, 1 otherwise."""
    if user not in LOCAL_USERS:
        raise UsageError(f"--user {user!r}: unknown; local users are {', '.join(LOCAL_USERS)}")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--api {base!r}: expected an http(s) URL")
    base = base.rstrip("/")
    token = issue_token(home(), user)
    try:
        created = _call(f"{base}/sessions", token, "POST", {"request": request})
    except urllib.error.URLError as exc:
        raise UsageError(f"--api {base}: {exc.reason}") from exc
    session_id = created["session_id"]
    printer = TracePrinter(sys.stderr if as_json else out)
    stream = urllib.request.Request(  # noqa: S310
        f"{base}/sessions/{session_id}/stream", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(stream, timeout=600) as events:  # noqa: S310
        for raw in events:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            item = json.loads(line.removeprefix("data: "))
            printer.publish(Event(session_id, item["step"], item["kind"], item["data"]))
            if item["kind"] in {"final", "stopped"}:
                break
    view = _call(f"{base}/sessions/{session_id}", token)
    if as_json:
        print(json.dumps(view, indent=2), file=out)
    return 0 if view["status"] == "completed" else 1
