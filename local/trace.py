"""A step trace for people: one line per event, printed as it happens.

Tool names, arguments, answers and results are chosen by the model (or by data it wrote):
control characters in them are shown escaped, never sent to the terminal, so no output can
clear the screen, set the window title, recolour or forge trace lines.
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

from orchestrator.ports import Event

_WIDTH = 400
# C0 and C1 controls (ESC, CSI, BEL, carriage return, ...), DEL, bidirectional overrides and
# lone surrogates (which no terminal encoding can write); a newline only where allowed.
_UNSAFE = "\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_IN_LINE = re.compile(f"[{_UNSAFE}\n]")
_UNSAFE_IN_TEXT = re.compile(f"[{_UNSAFE}]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` safe for a terminal: every control character written as an escape (`\\x1b`)."""
    return (_UNSAFE_IN_TEXT if newlines else _UNSAFE_IN_LINE).sub(_escaped, text)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


class TracePrinter:
    """EventPublisher that writes a readable trace."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.events: list[Event] = []

    def _line(self, text: str, *, newlines: bool = False) -> None:
        print(printable(text, newlines=newlines), file=self._out, flush=True)

    def publish(self, event: Event) -> None:
        """Print one event."""
        self.events.append(event)
        d = event.data
        step = f"step {event.step + 1:>2}"
        if event.kind == "session_started":
            self._line(f"session {event.session_id}  model {d['model']}")
            self._line(f"request: {d['request']}")
        elif event.kind == "model_proposed":
            self._proposed(step, d)
        elif event.kind == "validation_failed":
            self._rejected(step, d)
        elif event.kind == "tool_result":
            if d.get("status") == "ok":
                replay = " (replayed, nothing written twice)" if d.get("replayed") else ""
                self._line(f"         {d['tool']} ok{replay}: {_short(d.get('output'))}")
            else:
                self._line(
                    f"         {d['tool']} {d.get('error_kind')}: {_short(d.get('message'))}"
                )
        elif event.kind == "tool_retry":
            self._line(
                f"         {d['tool']} attempt {d['attempt']} failed ({_short(d.get('message'))}); "
                f"retrying in {d['delay_seconds']:.2f} s"
            )
        elif event.kind == "final":
            self._line(f"final answer: {d['answer']}", newlines=True)
            self._summary(d)
        elif event.kind == "stopped":
            self._line(f"stopped: {d['reason']}")
            self._summary(d)

    def _proposed(self, step: str, d: dict[str, Any]) -> None:
        if d.get("reason"):
            self._line(f"{step}  model says: {_short(d['reason'])}")
            step = " " * len(step)
        self._line(f"{step}  model proposes {d['tool']} {_short(d['arguments'])}")
        if d.get("ignored"):
            self._line(
                f"         also proposed in the same turn, not run: {', '.join(d['ignored'])}"
            )

    def _rejected(self, step: str, d: dict[str, Any]) -> None:
        problem = d.get("details", {}).get("problem")
        if problem is None:
            self._line(
                f"         rejected before invoking (no side effect): {_short(d['message'])}"
            )
            return
        said = f": {_short(d['text'])}" if d.get("text") else ""
        self._line(f"{step}  model reply unusable ({problem}){said}")
        self._line(f"         shown to the model (nothing run): {_short(d['message'])}")

    def _summary(self, d: dict[str, Any]) -> None:
        rejected = d.get("validation_errors", 0)
        self._line(
            f"outcome {d['outcome']} · {d['steps']} steps · "
            f"{d['input_tokens']} input + {d['output_tokens']} output tokens · "
            f"${d['cost_usd']:.6f} · {d['retries']} tool retries · "
            f"{rejected} validation round-trip{'' if rejected == 1 else 's'}"
        )
        if "writes_done" in d:
            last_ok = d.get("last_write_ok")
            verdict = (
                "no write attempted"
                if last_ok is None
                else ("the last write succeeded" if last_ok else "the last write FAILED")
            )
            self._line(f"writes done: {d['writes_done']} · {verdict}")
        by_model = d.get("usage_by_model", {})
        if len(by_model) > 1:
            for model, usage in by_model.items():
                self._line(
                    f"  {model}: {usage['input_tokens']} input + {usage['output_tokens']} output tokens"
                )
