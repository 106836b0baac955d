"""A model that replays a script: for tests, and for the demo when no provider is configured.

Script file (YAML or JSON):

    model: demo-script
    steps:
      - tool: flight_book
        arguments: {origin: Paris, destination: JFK, date: "{today+30}"}
      - unusable: truncated        # or refused, filtered, malformed, empty
        text: '<tool_call>{"name": "flight_bo'
      - final: "Booked."

`arguments` may be a mapping or a raw string (sent exactly as written, to rehearse malformed
JSON); an `unusable` entry rehearses a turn a provider adapter could not use. `{today+N}`
becomes the ISO date N days from today. `latency_seconds: 0.2` makes every decision take that
long, to rehearse a real model's think time. Token usage is estimated from the
size of what a real model would have been sent (about four characters a token).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import PydanticSerializationError

from orchestrator.context import estimate_tokens
from orchestrator.models.turns import MESSAGES, unusable
from orchestrator.ports import ModelError, ModelRequest
from orchestrator.records import codec
from orchestrator.types import Decision, FinalAnswer, ModelTurn, ToolCall, Usage

_TODAY = re.compile(r"\{today([+-]\d+)?\}")


def _expand(text: str) -> str:
    today = dt.datetime.now(dt.UTC).date()
    return _TODAY.sub(lambda m: (today + dt.timedelta(days=int(m.group(1) or 0))).isoformat(), text)


class ScriptedModel:
    """Replays decisions in order; with `repeat_last`, keeps repeating the final entry.

    By default the position in the script is the number of steps the request already shows,
    so a session resumed from a checkpoint by another worker (with a fresh model) continues
    where it left off. `by_history=False` counts calls to this instance instead (for a
    synthesizer, which is asked once whatever the history).
    """

    def __init__(
        self,
        decisions: Sequence[Decision],
        *,
        name: str = "scripted",
        repeat_last: bool = False,
        by_history: bool = True,
        latency_seconds: float = 0.0,
    ) -> None:
        self._decisions = list(decisions)
        self._latency = latency_seconds
        self._calls = 0
        self._name = name
        self._repeat_last = repeat_last
        self._by_history = by_history

    @property
    def model_id(self) -> str:
        """`scripted:NAME`, so traces say plainly that no real model is involved."""
        return f"scripted:{self._name}"

    @classmethod
    def from_file(cls, path: str | Path, *, by_history: bool = True) -> ScriptedModel:
        """Load a script; raises ValueError naming the bad entry."""
        path = Path(path)
        doc = yaml.safe_load(_expand(path.read_text()))
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise ValueError(f"{path}: expected a mapping with a 'steps' list")
        decisions: list[Decision] = []
        for i, entry in enumerate(doc["steps"]):
            decisions.append(_decision(entry, i, path))
        return cls(
            decisions,
            name=str(doc.get("model", path.stem)),
            repeat_last=bool(doc.get("repeat_last")),
            by_history=by_history,
            latency_seconds=_latency(doc.get("latency_seconds", 0), path),
        )

    def decide(self, request: ModelRequest) -> ModelTurn:
        """The next scripted decision, with estimated usage."""
        position = len(request.exchanges) if self._by_history else self._calls
        self._calls += 1
        if self._latency:
            time.sleep(self._latency)
        if position >= len(self._decisions):
            if not (self._repeat_last and self._decisions):
                raise ModelError("the script has no more steps")
            position = len(self._decisions) - 1
        decision = self._decisions[position]
        if isinstance(decision, ToolCall):
            decision = replace(decision, call_id=f"call-{len(request.exchanges)}")
        output = _json_size(decision) // 4
        return ModelTurn(
            decision=decision,
            usage=Usage(input_tokens=estimate_tokens(request), output_tokens=max(1, output)),
            model_id=self.model_id,
        )


def _latency(value: Any, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 60:
        raise ValueError(f"{path}: latency_seconds must be a number of seconds from 0 to 60")
    return float(value)


def _json_size(decision: Decision) -> int:
    """Size of the decision as JSON, which a provider would have produced."""
    try:
        return len(codec(type(decision)).dump_json(decision))
    except PydanticSerializationError:  # text that is not valid Unicode, rehearsed on purpose
        return len(json.dumps(codec(type(decision)).dump_python(decision, mode="json")))


def _decision(entry: Any, index: int, path: Path) -> Decision:
    if isinstance(entry, dict) and entry.get("unusable") in MESSAGES:
        return unusable(entry["unusable"], str(entry.get("text", "")))
    if isinstance(entry, dict) and "final" in entry:
        return FinalAnswer(text=str(entry["final"]))
    if isinstance(entry, dict) and "tool" in entry:
        arguments = entry.get("arguments", {})
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        return ToolCall(call_id=f"call-{index}", tool=str(entry["tool"]), arguments=raw)
    raise ValueError(
        f"{path}: step {index + 1} needs 'tool' (with 'arguments'), 'final' or 'unusable' "
        f"(one of {', '.join(MESSAGES)})"
    )
