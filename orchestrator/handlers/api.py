"""API Lambda: POST /sessions runs one session for the authenticated caller."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog import Catalog
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.principal import principal_from_claims
from orchestrator.settings import OrchestratorSettings
from orchestrator.stores.memory import MemoryStore
from tools.registry import CONTRACTS

logger = Logger(service="lockgate-orchestrator")
app = APIGatewayRestResolver(enable_validation=True)


class SessionRequest(BaseModel):
    """Body of POST /sessions."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1, max_length=4000)
    max_steps: int | None = Field(default=None, ge=1, le=100)


@cache
def _orchestrator(max_steps: int) -> Orchestrator:
    from orchestrator.invokers.lambda_ import LambdaInvoker
    from orchestrator.models.bedrock import BedrockModel

    settings = OrchestratorSettings()
    return Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=BedrockModel(settings.model_id),
        invoker=LambdaInvoker(settings.tool_functions),
        store=MemoryStore(),
        limits=Limits(max_steps=min(max_steps, settings.max_steps)),
    )


@app.post("/sessions")
def create_session(body: SessionRequest) -> Response[dict[str, Any]]:
    """Run a session synchronously and return its outcome."""
    claims = app.current_event.request_context.authorizer.claims
    principal = principal_from_claims(claims)
    if principal is None:
        return Response(status_code=403, body={"message": "no tenant in the caller's identity"})
    orchestrator = _orchestrator(body.max_steps or OrchestratorSettings().max_steps)
    state = orchestrator.run(orchestrator.start(uuid.uuid4().hex, body.request, principal))
    logger.info(
        "session done", extra={"session_id": state.session_id, "outcome": str(state.outcome)}
    )
    return Response(
        status_code=200,
        body={
            "session_id": state.session_id,
            "outcome": state.outcome,
            "reason": state.reason,
            "answer": state.answer,
            "steps": len(state.steps),
            "usage": state.usage.model_dump(),
            "partial_result": state.partial_result(),
        },
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return app.resolve(event, context)
