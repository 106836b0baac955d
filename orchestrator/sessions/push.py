"""Progress push over an API Gateway WebSocket API: each checkpointed event goes to every
connection subscribed to the session. Delivery problems never fail the session."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.sessions.ports import SessionRepository, Subscriptions
from orchestrator.sessions.record import SessionNotFound, SessionRecord
from orchestrator.types import Principal


class WebSocketPush:
    """Posts events to subscribed connections; forgets connections that are gone."""

    def __init__(self, subscriptions: Subscriptions, management: Any) -> None:
        self.subscriptions, self.management = subscriptions, management

    def __call__(self, record: SessionRecord, events: list[dict[str, Any]]) -> None:
        """Push the events of one checkpoint, numbered as they are stored."""
        if not events:
            return
        first = record.events_count - len(events) + 1
        for connection in self.subscriptions.connections(record.session_id):
            for offset, event in enumerate(events):
                data = json.dumps(
                    {"session_id": record.session_id, "seq": first + offset, **event}, default=str
                )
                try:
                    self.management.post_to_connection(ConnectionId=connection, Data=data.encode())
                except ClientError as exc:
                    if exc.response["Error"]["Code"] == "GoneException":
                        self.subscriptions.forget(connection, record.session_id)
                    # Throttled or failing pushes are dropped: clients can always poll /events.
                    break


class PushConnections:
    """What the WebSocket API does: remember who opened a connection, and let only a
    session's owner follow it (another user's session is answered as not found)."""

    def __init__(self, subscriptions: Subscriptions, repo: SessionRepository) -> None:
        self.subscriptions, self.repo = subscriptions, repo

    def handle(
        self, route: str, connection: str, principal: Principal | None, body: str | None
    ) -> tuple[int, dict[str, Any]]:
        """`$connect`, `$disconnect` or `subscribe`: the status code and the reply body."""
        if route == "$connect":
            if principal is None:
                return 401, {"message": "unauthorized"}
            self.subscriptions.connect(connection, principal.model_dump_json())
            return 200, {"connected": True}
        if route == "$disconnect":
            self.subscriptions.forget(connection)
            return 200, {"disconnected": True}
        if route == "subscribe":
            return self._subscribe(connection, body)
        return 400, {"message": f"unknown route {route}"}

    def _subscribe(self, connection: str, body: str | None) -> tuple[int, dict[str, Any]]:
        owner = self.subscriptions.owner(connection)
        if owner is None:
            return 401, {"message": "unknown connection"}
        try:
            session_id = str(json.loads(body or "{}")["session_id"])
            record = self.repo.get(session_id)
        except (ValueError, KeyError, TypeError, SessionNotFound):
            return 404, {"message": "no such session"}
        if not record.owned_by(Principal.model_validate_json(owner)):
            return 404, {"message": "no such session"}
        self.subscriptions.subscribe(connection, session_id)
        return 200, {"subscribed": session_id}
