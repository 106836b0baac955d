"""Invoke tools in this process, through the same handler and the same JSON a Lambda gets."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.invokers.responses import failure, observation_from_response
from orchestrator.types import ErrorKind, Observation
from tools.kit.settings import ToolSettings
from tools.registry import handler_module

Handler = Callable[[Mapping[str, Any], object], Any]


class InProcessInvoker:
    """Local adapter: each tool's handler bound to that tool's own settings (its own DB role).

    The envelope and the response are round-tripped through JSON, exactly as Lambda would.
    Like Lambda, a tool runs one invocation per execution environment at a time: concurrent
    invocations each take an idle environment (a handler with its own database connection)
    or start a new one, so no two calls ever share a connection or a transaction.
    """

    def __init__(self, settings: Mapping[str, ToolSettings]) -> None:
        self._settings = dict(settings)
        self._idle: dict[str, list[Handler]] = {}
        self._all: list[Handler] = []
        self._lock = threading.Lock()

    def _take(self, tool: str) -> Handler | None:
        with self._lock:
            idle = self._idle.setdefault(tool, [])
            if idle:
                return idle.pop()
            if tool not in self._settings:
                return None
        module = importlib.import_module(handler_module(tool))
        handler: Handler = module.handler.bind(self._settings[tool])
        with self._lock:
            self._all.append(handler)
        return handler

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """Call the tool's handler with a JSON copy of the envelope."""
        handler = self._take(tool)
        if handler is None:
            return failure(ErrorKind.INTERNAL, f"tool {tool} is not deployed here")
        try:
            event = json.loads(json.dumps(envelope))
            response = json.loads(json.dumps(handler(event, None), default=str))
        finally:
            with self._lock:
                self._idle[tool].append(handler)
        return observation_from_response(response)

    def close(self) -> None:
        """Close every environment's database connection."""
        with self._lock:
            handlers, self._all, self._idle = self._all, [], {}
        for handler in handlers:
            handler.db.close()  # type: ignore[attr-defined]  # ToolHandler owns a ToolDatabase
