"""Model specs: `bedrock:MODEL_ID`, `openai:MODEL`, `anthropic:MODEL` (a bare id is Bedrock).

One place turns a spec (from the CLI, a session's options or the deployment's configuration)
into an adapter; the deployment's allow-list is checked on the spec before this runs. Each
provider's SDK is imported only when its spec is used, so a deployment without the optional
extra never loads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

from orchestrator.ports import Model

Provider = Literal["bedrock", "openai", "anthropic"]
PROVIDERS: tuple[Provider, ...] = ("bedrock", "openai", "anthropic")
# A bare Bedrock id names its vendor first: `amazon.nova-lite-v1:0`, `eu.anthropic.claude-…`.
_BARE_BEDROCK_ID = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9.:-]+$")


class UnknownModel(ValueError):
    """The spec names no provider Lockgate has, or no model."""


class ModelConfigError(ValueError):
    """The provider's SDK refused its configuration (for example: no credentials)."""


def parse_spec(spec: str) -> tuple[Provider, str]:
    """`(provider, model)` of a spec; a bare Bedrock id (`amazon.nova-lite-v1:0`, whose
    colon is part of the id) is `bedrock`."""
    prefix, sep, model = spec.partition(":")
    for provider in PROVIDERS:
        if sep and prefix == provider and model:
            return provider, model
    if _BARE_BEDROCK_ID.match(spec):
        return "bedrock", spec
    raise UnknownModel(
        f"model {spec!r}: expected bedrock:MODEL_ID, openai:MODEL or anthropic:MODEL"
    )


def model_from_spec(
    spec: str,
    *,
    prompt_cache: bool = False,
    api_key: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Model:
    """The adapter for `spec`. `LOCKGATE_MODEL_READ_TIMEOUT` (seconds, default 30) bounds
    one provider call and `LOCKGATE_MODEL_MAX_TOKENS` (default 1024) one reply.

    `api_key` is the deployment's key for an `openai:` or `anthropic:` spec, handed to the
    SDK client only (the cloud reads it from Secrets Manager). Without it each SDK reads its
    own variables (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`), never Lockgate; the base URL is
    always the SDK's own (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`)."""
    provider, model = parse_spec(spec)
    timeout = float(environ.get("LOCKGATE_MODEL_READ_TIMEOUT", "30"))
    max_tokens = int(environ.get("LOCKGATE_MODEL_MAX_TOKENS", "1024"))
    if provider == "openai":
        import openai

        from orchestrator.models.openai import OpenAIModel

        try:
            client = None
            if api_key is not None:
                client = openai.OpenAI(api_key=api_key, max_retries=0, timeout=timeout)
            elif environ.get("OPENAI_BASE_URL") and not environ.get("OPENAI_API_KEY"):
                # A local OpenAI-compatible server needs no key, but the SDK insists on one.
                client = openai.OpenAI(api_key="unused", max_retries=0, timeout=timeout)
            return OpenAIModel(
                model, client=client, max_tokens=max_tokens, read_timeout_seconds=timeout
            )
        except openai.OpenAIError as exc:
            raise ModelConfigError(f"openai: {exc}") from exc
    if provider == "anthropic":
        import anthropic

        from orchestrator.models.anthropic import AnthropicModel

        return AnthropicModel(
            model,
            client=(
                None
                if api_key is None
                else anthropic.Anthropic(api_key=api_key, max_retries=0, timeout=timeout)
            ),
            max_tokens=max_tokens,
            read_timeout_seconds=timeout,
            prompt_cache=prompt_cache,
        )
    from orchestrator.models.bedrock import BedrockModel

    return BedrockModel(
        model, max_tokens=max_tokens, prompt_cache=prompt_cache, read_timeout_seconds=timeout
    )
