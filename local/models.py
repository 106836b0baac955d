"""Models for local runs: `scripted:FILE`, `bedrock:MODEL_ID`, `openai:MODEL`,
`anthropic:MODEL`, or a bare Bedrock model id."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.models.specs import ModelConfigError, UnknownModel, model_from_spec
from orchestrator.ports import Model


class UsageError(Exception):
    """Bad command-line input; the message says what is expected."""


SPECS = "scripted:FILE, bedrock:MODEL_ID, openai:MODEL or anthropic:MODEL"


def load_model(spec: str) -> Model:
    """The model a spec names (a provider's SDK is needed only when its spec is used)."""
    kind, sep, value = spec.partition(":")
    if kind == "scripted" and value:
        from orchestrator.models.scripted import ScriptedModel

        path = Path(value)
        if not path.is_file():
            raise UsageError(f"--model scripted:{value}: no such file")
        try:
            return ScriptedModel.from_file(path)
        except ValueError as exc:
            raise UsageError(f"--model {spec}: {exc}") from exc
    if not sep:
        raise UsageError(f"--model {spec!r}: expected {SPECS}")
    try:
        # LOCKGATE_PROMPT_CACHE=true caches the instructions and catalog between turns.
        return model_from_spec(spec, prompt_cache=os.environ.get("LOCKGATE_PROMPT_CACHE") == "true")
    except UnknownModel as exc:
        raise UsageError(f"--model {spec!r}: expected {SPECS}") from exc
    except ModelConfigError as exc:
        raise UsageError(f"--model {spec}: {exc}") from exc
    except ImportError as exc:
        raise UsageError(
            f"--model {spec}: the provider's SDK is not installed ({exc.name}); install "
            f"lockgate[{kind}]"
        ) from exc


def local_model(model_id: str) -> Model:
    """The worker's model factory in the local stack: any spec, or a bare Bedrock id."""
    if model_id.startswith(("scripted:", "bedrock:", "openai:", "anthropic:")):
        return load_model(model_id)
    return load_model(f"bedrock:{model_id}")
