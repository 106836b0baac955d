"""WebSocket Lambda: connect / subscribe / disconnect.

A client connects with `?token=<Cognito ID token>` (checked by `websocket_authorizer`), then
sends `{"action": "subscribe", "session_id": "..."}`; every event of that session is pushed to
it. Only the session's owner may subscribe (another user's session is answered as not found).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from orchestrator import wiring
from orchestrator.sessions.push import PushConnections
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


@cache
def _connections() -> PushConnections:
    config = wiring.settings()
    return PushConnections(wiring.subscriptions(config), wiring.repository(config))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`$connect`, `$disconnect` and `subscribe`."""
    request = event["requestContext"]
    status, body = _connections().handle(
        request["routeKey"], request["connectionId"], _principal(event), event.get("body")
    )
    return {"statusCode": status, "body": json.dumps(body)}
