from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.types import FinalAnswer, ToolCall

EMPTY = ModelRequest(system="s", request="r", exchanges=(), tools=())


def test_script_file_expands_relative_dates(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(
        "model: t\nsteps:\n  - tool: flight_book\n    arguments: {date: '{today+3}'}\n"
        "  - tool: customer_lookup\n    arguments: 'not json'\n  - final: done\n"
    )
    model = ScriptedModel.from_file(script, by_history=False)
    first = model.decide(EMPTY).decision
    assert isinstance(first, ToolCall)
    expected = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()
    assert json.loads(first.arguments) == {"date": expected}
    second = model.decide(EMPTY).decision
    assert isinstance(second, ToolCall) and second.arguments == "not json"
    assert model.decide(EMPTY).decision == FinalAnswer(text="done")
    assert model.model_id == "scripted:t"
    with pytest.raises(ModelError):
        model.decide(EMPTY)


def test_bad_script_names_the_step(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("steps:\n  - final: ok\n  - nonsense: 1\n")
    with pytest.raises(ValueError, match="step 2"):
        ScriptedModel.from_file(script)
