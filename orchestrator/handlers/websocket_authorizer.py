"""WebSocket `$connect` authorizer Lambda: allow a valid Cognito ID token with a tenant.

A client connects with `?token=<Cognito ID token>`; the policy carries the principal to the
WebSocket handler. A function of its own, so the handler never loads the token libraries and
the authorizer never loads the sessions table.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from orchestrator.principal import principal_from_claims
from orchestrator.settings import EnvironmentSettings
from orchestrator.tokens import MAX_TOKEN_LIFETIME_SECONDS, CognitoVerifier
from orchestrator.types import Principal

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class WebSocketSettings(EnvironmentSettings):
    """The user pool whose ID tokens are accepted."""

    user_pool_id: str = ""
    user_pool_client_id: str = ""
    region: str = "us-east-1"
    jwks_url: str = ""
    max_token_lifetime_seconds: int = MAX_TOKEN_LIFETIME_SECONDS


@cache
def _verifier() -> CognitoVerifier:
    config = WebSocketSettings.from_env()
    return CognitoVerifier(
        config.region,
        config.user_pool_id,
        config.user_pool_client_id,
        config.jwks_url or None,
        max_lifetime_seconds=config.max_token_lifetime_seconds,
    )


def _policy(effect: str, resource: str, principal: Principal | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "principalId": principal.user_id if principal else "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if principal is not None:
        response["context"] = {
            "user_id": principal.user_id,
            "tenant_id": principal.tenant_id,
            "scopes": " ".join(sorted(principal.scopes)),
        }
    return response


def authorize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """REQUEST authorizer of `$connect`: allow a valid ID token with a tenant, deny the rest."""
    token = (event.get("queryStringParameters") or {}).get("token", "")
    claims = _verifier().claims(token) if token else None
    principal = principal_from_claims(claims)
    return _policy("Allow" if principal else "Deny", event["methodArn"], principal)
