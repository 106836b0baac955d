"""Model specs: `bedrock:MODEL_ID`, `openai:MODEL`, `anthropic:MODEL` (a bare id is Bedrock).

One place turns a spec (from the CLI, a session's options or the deployment's configuration)
into an adapter; the deployment's allow-list is checked on the spec before this runs. Each
provider's SDK is imported only when its spec is used, so a deployment without the optional
extra never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.ports import Model

PROVIDERS = ("bedrock", "openai", "anthropic")


class UnknownModel(ValueError):
    """The spec names no provider Lockgate has, or no model."""


class ModelConfigError(ValueError):
    """The provider's SDK refused its configuration (for example: no credentials)."""


def model_from_spec(
    spec: str, *, prompt_cache: bool = False, environ: Mapping[str, str] = os.environ
) -> Model:
    """The adapter for `spec`. `LOCKGATE_MODEL_READ_TIMEOUT` (seconds, default 30) bounds
    one provider call and `LOCKGATE_MODEL_MAX_TOKENS` (default 1024) one reply. SDK
    credentials are read by each SDK from its own variables, never by Lockgate."""
    provider, sep, model = spec.partition(":")
    if not sep:
        provider, model = "bedrock", spec
    if provider not in PROVIDERS or not model:
        raise UnknownModel(
            f"model {spec!r}: expected bedrock:MODEL_ID, openai:MODEL or anthropic:MODEL"
        )
    timeout = float(environ.get("LOCKGATE_MODEL_READ_TIMEOUT", "30"))
    max_tokens = int(environ.get("LOCKGATE_MODEL_MAX_TOKENS", "1024"))
    if provider == "openai":
        import openai

        from orchestrator.models.openai import OpenAIModel

        try:
            client = None
            if environ.get("OPENAI_BASE_URL") and not environ.get("OPENAI_API_KEY"):
                # A local OpenAI-compatible server needs no key, but the SDK insists on one.
                client = openai.OpenAI(api_key="unused", max_retries=0, timeout=timeout)
            return OpenAIModel(
                model, client=client, max_tokens=max_tokens, read_timeout_seconds=timeout
            )
        except openai.OpenAIError as exc:
            raise ModelConfigError(f"openai: {exc}") from exc
    if provider == "anthropic":
        from orchestrator.models.anthropic import AnthropicModel

        return AnthropicModel(
            model, max_tokens=max_tokens, read_timeout_seconds=timeout, prompt_cache=prompt_cache
        )
    from orchestrator.models.bedrock import BedrockModel

    return BedrockModel(
        model, max_tokens=max_tokens, prompt_cache=prompt_cache, read_timeout_seconds=timeout
    )
