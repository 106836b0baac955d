"""A REST resolver whose request state belongs to the thread resolving the request.

Powertools' resolver keeps the current event and the Lambda context as class attributes and
the route context on the instance. Lambda runs one event per process at a time, so that is
safe there; a local server resolving several requests at once in threads would mix them (a
session created by one user stored as another's). Here the event, the context, the route
context and the middleware frames are thread-local, so every request sees only its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext


class _RequestState(threading.local):
    event: APIGatewayProxyEvent | None = None
    context: LambdaContext | None = None

    def __init__(self) -> None:
        self.route_context: dict[str, Any] = {}
        self.frames: list[str] = []


class ThreadSafeRestResolver(APIGatewayRestResolver):
    """`APIGatewayRestResolver` with per-thread request state (same behaviour per request)."""

    def __init__(self, **kwargs: Any) -> None:
        self._state = _RequestState()
        super().__init__(**kwargs)

    # Data descriptors on the subclass win over the base class's attributes, which
    # `resolve` still assigns (shared, and no longer read).
    @property  # type: ignore[override]  # a property in place of a plain attribute
    def current_event(self) -> APIGatewayProxyEvent:
        event = self._state.event
        if event is None:
            raise RuntimeError("no request is being resolved on this thread")
        return event

    @current_event.setter
    def current_event(self, event: APIGatewayProxyEvent) -> None:
        self._state.event = event

    @property
    def lambda_context(self) -> LambdaContext:
        context = self._state.context
        if context is None:
            raise RuntimeError("no request is being resolved on this thread")
        return context

    @lambda_context.setter
    def lambda_context(self, context: LambdaContext) -> None:
        self._state.context = context

    @property
    def context(self) -> dict[str, Any]:
        return self._state.route_context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._state.route_context = value

    @property
    def processed_stack_frames(self) -> list[str]:
        return self._state.frames

    @processed_stack_frames.setter
    def processed_stack_frames(self, value: list[str]) -> None:
        self._state.frames = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Resolve one event with this thread's state."""
        self._state.event = APIGatewayProxyEvent(dict(event))
        self._state.context = context
        self._state.route_context = {}
        self._state.frames = []
        return super().resolve(event, context)
