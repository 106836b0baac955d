"""WebSocket Lambda: connect / subscribe / disconnect.

A client connects with `?token=<Cognito ID token>` (checked by `websocket_authorizer`), then
sends `{"action": "subscribe", "session_id": "..."}`; every event of that session is pushed to
it. Only the session's owner may subscribe (another user's session is answered as not found).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from orchestrator import wiring
from orchestrator.push import subscription_key
from orchestrator.sessions import SessionNotFound
from orchestrator.types import Principal

logger = Logger(service="lockgate-websocket")


def _principal(event: dict[str, Any]) -> Principal | None:
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    if not authorizer.get("user_id") or not authorizer.get("tenant_id"):
        return None
    return Principal(
        user_id=authorizer["user_id"],
        tenant_id=authorizer["tenant_id"],
        scopes=frozenset(str(authorizer.get("scopes", "")).split()),
    )


def _reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body)}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`$connect`, `$disconnect` and `subscribe`."""
    config = wiring.settings()
    dynamodb = wiring.client("dynamodb", config)
    request = event["requestContext"]
    route, connection = request["routeKey"], request["connectionId"]
    principal = _principal(event)
    connection_key = {"pk": {"S": f"C#{connection}"}, "sk": {"S": "META"}}
    if route == "$connect":
        if principal is None:
            return _reply(401, {"message": "unauthorized"})
        dynamodb.put_item(
            TableName=config.table_name,
            Item={**connection_key, "principal": {"S": principal.model_dump_json()}},
        )
        return _reply(200, {"connected": True})
    if route == "$disconnect":
        item = dynamodb.get_item(TableName=config.table_name, Key=connection_key).get("Item", {})
        for session_id in item.get("sessions", {}).get("SS", []):
            dynamodb.delete_item(
                TableName=config.table_name, Key=subscription_key(session_id, connection)
            )
        dynamodb.delete_item(TableName=config.table_name, Key=connection_key)
        return _reply(200, {"disconnected": True})
    if route == "subscribe":
        item = dynamodb.get_item(TableName=config.table_name, Key=connection_key).get("Item")
        if item is None:
            return _reply(401, {"message": "unknown connection"})
        owner = Principal.model_validate_json(item["principal"]["S"])
        try:
            session_id = str(json.loads(event.get("body") or "{}")["session_id"])
            record = wiring.repository(config).get(session_id)
        except (ValueError, KeyError, TypeError, SessionNotFound):
            return _reply(404, {"message": "no such session"})
        if not record.owned_by(owner):
            return _reply(404, {"message": "no such session"})
        dynamodb.put_item(
            TableName=config.table_name, Item=subscription_key(session_id, connection)
        )
        dynamodb.update_item(
            TableName=config.table_name,
            Key=connection_key,
            UpdateExpression="ADD sessions :s",
            ExpressionAttributeValues={":s": {"SS": [session_id]}},
        )
        return _reply(200, {"subscribed": session_id})
    return _reply(400, {"message": f"unknown route {route}"})
