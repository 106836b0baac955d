"""The step limit has one default and one ceiling, and every place that takes one agrees."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from infra.config import LockgateConfig
from infra.stacks.api import SESSION_OPTIONS_SCHEMA
from local.cli import build_parser
from local.evaluation.cases import CaseLimits
from orchestrator.limits import DEFAULT_MAX_STEPS, MAX_STEPS_CEILING, Limits
from orchestrator.sessions.record import SessionOptions
from orchestrator.settings import OrchestratorSettings

MODELS: list[type[BaseModel]] = [Limits, OrchestratorSettings, LockgateConfig, CaseLimits]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_configuration_defaults_to_the_one_default_and_stops_at_the_ceiling(
    model: type[BaseModel],
) -> None:
    assert model().model_dump()["max_steps"] == DEFAULT_MAX_STEPS
    assert model.model_validate({"max_steps": MAX_STEPS_CEILING}).model_dump()["max_steps"] == (
        MAX_STEPS_CEILING
    )
    for wrong in (0, MAX_STEPS_CEILING + 1):
        with pytest.raises(ValidationError):
            model.model_validate({"max_steps": wrong})


def test_a_caller_and_the_api_gateway_share_the_ceiling() -> None:
    assert SessionOptions(max_steps=MAX_STEPS_CEILING).max_steps == MAX_STEPS_CEILING
    with pytest.raises(ValidationError):
        SessionOptions(max_steps=MAX_STEPS_CEILING + 1)
    gateway = SESSION_OPTIONS_SCHEMA._values["properties"]["max_steps"]._values
    assert (gateway["minimum"], gateway["maximum"]) == (1, MAX_STEPS_CEILING)


@pytest.mark.parametrize("command", ["demo", "run"])
def test_the_cli_defaults_to_the_one_default_and_refuses_more_than_the_ceiling(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["request"] if command == "run" else []
    parser = build_parser()
    assert parser.parse_args([command, *extra]).max_steps == DEFAULT_MAX_STEPS
    with pytest.raises(SystemExit):
        parser.parse_args([command, *extra, "--max-steps", str(MAX_STEPS_CEILING + 1)])
