"""Models for local runs: `scripted:FILE`, `bedrock:MODEL_ID`, or a bare Bedrock model id."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.ports import Model


class UsageError(Exception):
    """Bad command-line input; the message says what is expected."""


def load_model(spec: str) -> Model:
    """`scripted:FILE` or `bedrock:MODEL_ID`."""
    kind, _, value = spec.partition(":")
    if kind == "scripted" and value:
        from orchestrator.models.scripted import ScriptedModel

        path = Path(value)
        if not path.is_file():
            raise UsageError(f"--model scripted:{value}: no such file")
        try:
            return ScriptedModel.from_file(path)
        except ValueError as exc:
            raise UsageError(f"--model {spec}: {exc}") from exc
    if kind == "bedrock" and value:
        from orchestrator.models.bedrock import BedrockModel

        # LOCKGATE_PROMPT_CACHE=true caches the instructions and catalog between turns.
        return BedrockModel(value, prompt_cache=os.environ.get("LOCKGATE_PROMPT_CACHE") == "true")
    raise UsageError(f"--model {spec!r}: expected scripted:FILE or bedrock:MODEL_ID")


def local_model(model_id: str) -> Model:
    """The worker's model factory in the local stack: scripted or Bedrock ids."""
    if model_id.startswith(("scripted:", "bedrock:")):
        return load_model(model_id)
    return load_model(f"bedrock:{model_id}")
