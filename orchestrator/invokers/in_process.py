"""Invoke tools in this process, through the same handler and the same JSON a Lambda gets."""

from __future__ import annotations

import importlib
import json
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
    """

    def __init__(self, settings: Mapping[str, ToolSettings]) -> None:
        self._settings = dict(settings)
        self._handlers: dict[str, Handler] = {}

    def _handler(self, tool: str) -> Handler | None:
        if tool not in self._handlers:
            if tool not in self._settings:
                return None
            module = importlib.import_module(handler_module(tool))
            self._handlers[tool] = module.handler.bind(self._settings[tool])
        return self._handlers[tool]

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """Call the tool's handler with a JSON copy of the envelope."""
        handler = self._handler(tool)
        if handler is None:
            return failure(ErrorKind.INTERNAL, f"tool {tool} is not deployed here")
        event = json.loads(json.dumps(envelope))
        response = json.loads(json.dumps(handler(event, None), default=str))
        return observation_from_response(response)

    def close(self) -> None:
        """Close every tool's database connection."""
        for handler in self._handlers.values():
            handler.db.close()  # type: ignore[attr-defined]  # ToolHandler owns a ToolDatabase
