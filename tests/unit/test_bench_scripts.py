"""The benchmark scripts still run and measure what they say (never their timings)."""

from __future__ import annotations

from bench import loop_overhead, prompt_tokens


def test_loop_benchmark_runs_both_loops_to_the_same_step_count() -> None:
    script = loop_overhead.turns(loop_overhead.SHORT)
    assert loop_overhead.lockgate_session(script) == loop_overhead.bare_session(script)
    assert loop_overhead.lockgate_session(script) == loop_overhead.SHORT


def test_prompt_benchmark_compacts_without_changing_the_outcome() -> None:
    result = prompt_tokens.measure()
    baseline, compacted = result[prompt_tokens.BASELINE], result["compacted"]
    assert baseline["outcome"] == compacted["outcome"] == "completed"
    assert len(compacted["input_tokens_per_step"]) == prompt_tokens.STEPS
    assert compacted["input_tokens_total"] < baseline["input_tokens_total"]
    # Compaction never shows more than append-all, step by step.
    assert all(
        c <= b
        for c, b in zip(
            compacted["input_tokens_per_step"], baseline["input_tokens_per_step"], strict=True
        )
    )
