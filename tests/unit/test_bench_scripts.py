"""The benchmark scripts still run and measure what they say (never their timings)."""

from __future__ import annotations

from bench import loop_overhead, prompt_tokens, python_exec
from tools.python_exec.policy import allowlist, check


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


def test_python_exec_benchmark_programs_pass_the_check_and_compute_their_answer() -> None:
    for code in (python_exec.ANALYSIS, python_exec.EXAMPLE["code"]):
        assert check(str(code), allowlist()) is None
    response = python_exec.handler(python_exec.ANALYSIS_CALL)
    assert response["status"] == "ok"
    months = response["output"]["result"]["months"]
    orders = python_exec.ORDERS["orders"]
    assert sum(m["orders"] for m in months) == len(orders)
    assert round(sum(m["total"] for m in months), 2) == round(sum(o["amount"] for o in orders), 2)
    assert response["output"]["result"]["largest"] == max(o["amount"] for o in orders)
    assert python_exec.BASELINE in python_exec.cases(calls=1)
