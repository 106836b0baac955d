from __future__ import annotations

import pytest

from orchestrator.context import compact_result, shown_result
from orchestrator.types import ErrorKind, Observation


@pytest.mark.parametrize("text", ["x" * 300, "é" * 300, "東" * 300])
def test_an_older_long_result_is_compacted_whatever_its_script(text: str) -> None:
    shown, chars = shown_result(Observation(status="ok", output={"note": text}), 8_000)
    compact = compact_result(shown, chars, 3, 160)
    assert compact["ref"] == "step 4"
    assert len(compact["preview"]) <= 164


def test_a_result_just_over_the_limit_is_kept_when_compacting_would_not_shrink_it() -> None:
    shown, chars = shown_result(Observation(status="ok", output={"note": "y" * 150}), 8_000)
    assert chars > 160
    assert compact_result(shown, chars, 0, 160) is shown


def test_a_long_error_keeps_its_kind_and_the_start_of_its_message() -> None:
    observation = Observation(status="error", error_kind=ErrorKind.NOT_FOUND, message="m" * 500)
    shown, chars = shown_result(observation, 8_000)
    compact = compact_result(shown, chars, 0, 160)
    assert compact == {"status": "error", "error_kind": "not_found", "message": "m" * 160}
