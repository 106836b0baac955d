"""Progress push over an API Gateway WebSocket API: each checkpointed event goes to every
connection subscribed to the session. Delivery problems never fail the session."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.sessions import SessionRecord


def subscription_key(session_id: str, connection_id: str) -> dict[str, Any]:
    """The item that subscribes a connection to a session."""
    return {"pk": {"S": f"S#{session_id}"}, "sk": {"S": f"SUB#{connection_id}"}}


class WebSocketPush:
    """Posts events to subscribed connections; forgets connections that are gone."""

    def __init__(self, table: str, dynamodb: Any, management: Any) -> None:
        self.table, self.dynamodb, self.management = table, dynamodb, management

    def connections(self, session_id: str) -> list[str]:
        """Connection ids subscribed to a session."""
        response = self.dynamodb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sub)",
            ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}, ":sub": {"S": "SUB#"}},
        )
        return [item["sk"]["S"].removeprefix("SUB#") for item in response["Items"]]

    def __call__(self, record: SessionRecord, events: list[dict[str, Any]]) -> None:
        """Push the events of one checkpoint, numbered as they are stored."""
        if not events:
            return
        first = record.events_count - len(events) + 1
        for connection in self.connections(record.session_id):
            for offset, event in enumerate(events):
                data = json.dumps(
                    {"session_id": record.session_id, "seq": first + offset, **event}, default=str
                )
                try:
                    self.management.post_to_connection(ConnectionId=connection, Data=data.encode())
                except ClientError as exc:
                    if exc.response["Error"]["Code"] == "GoneException":
                        self.dynamodb.delete_item(
                            TableName=self.table,
                            Key=subscription_key(record.session_id, connection),
                        )
                        break
                    # Throttled or failing pushes are dropped: clients can always poll /events.
                    break
