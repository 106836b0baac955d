"""Infra test fixtures: one fast in-memory build (no bundling, no validation) for the
template assertions; the full synth lives in test_synth.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# jsii warns loudly on Node 20; the tests run on whatever Node the machine has.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from cfn_model import Assembly

from infra.config import LockgateConfig
from infra.wiring import Lockgate, build
from orchestrator.pricing import Price

ROOT = Path(__file__).resolve().parents[2]


def cdk_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def default_config() -> LockgateConfig:
    return LockgateConfig.model_validate(cdk_context()["lockgate"])


def provider_config() -> LockgateConfig:
    """cdk.json's configuration with an OpenAI and an Anthropic model allowed, OpenAI through
    an OpenAI-compatible server."""
    base = default_config()
    models = base.models.model_copy(
        update={
            "allowed": (*base.models.allowed, "openai:gpt-4.1-mini"),
            "synthesizer": "anthropic:claude-sonnet-4-5",
            "base_urls": {"openai": "https://llm.example.com/v1"},
            "prices": {"openai:gpt-4.1-mini": Price(input_per_mtok=0.5, output_per_mtok=2.0)},
        }
    )
    return LockgateConfig.model_validate({**base.model_dump(), "models": models.model_dump()})


@pytest.fixture(scope="session")
def config() -> LockgateConfig:
    return default_config()


@pytest.fixture(scope="session")
def lockgate(config: LockgateConfig) -> Lockgate:
    # No stack is bundled (assets point at the sources) and CDK's own template validation
    # is off: these tests read templates, the full synth checks them.
    app = App(
        context={**cdk_context(), "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    return build(app, config)


@pytest.fixture(scope="session")
def templates(lockgate: Lockgate) -> dict[str, Template]:
    return {stack.stack_name: Template.from_stack(stack) for stack in lockgate.stacks}


@pytest.fixture(scope="session")
def assembly(templates: dict[str, Template]) -> Assembly:
    return Assembly({name: t.to_json() for name, t in templates.items()})
