"""Retrying transient tool failures: exponential backoff with full jitter, bounded by attempts
and by the session's deadline, honouring a tool's `retry_after_seconds`.

tenacity runs the attempts; Lockgate only supplies the wait (with an injectable random source,
so tests assert the exact schedule) and the deadline-aware stop.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from orchestrator.types import ErrorKind, Observation


def is_transient(observation: Observation) -> bool:
    """Worth retrying: the failure says the same call may succeed later."""
    return observation.status == "error" and observation.error_kind is ErrorKind.TRANSIENT


class FullJitter(wait_base):
    """Sleep uniform(0, min(cap, base * 2**(attempt-1))), at least the tool's Retry-After."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = min(self.cap, self.base * 2 ** (retry_state.attempt_number - 1))
        delay = self.rng.uniform(0, ceiling)
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            retry_after = outcome.result().details.get("retry_after_seconds")
            if isinstance(retry_after, int | float) and retry_after > 0:
                delay = max(delay, min(float(retry_after), self.cap))
        return delay


class StopAtDeadline(stop_base):
    """Stop when the next sleep would end past the deadline (None: no deadline)."""

    def __init__(self, deadline: float | None, clock: Callable[[], float]) -> None:
        self.deadline, self.clock = deadline, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return self.clock() + retry_state.upcoming_sleep >= self.deadline


def retrying(
    *,
    attempts: int,
    base: float,
    cap: float,
    rng: random.Random,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    deadline: float | None,
    on_retry: Callable[[int, float, Observation], None],
) -> Retrying:
    """A tenacity controller that retries transient observations and returns the last one."""

    def before_sleep(state: RetryCallState) -> None:
        assert state.outcome is not None  # tenacity sleeps only after an attempt
        on_retry(state.attempt_number, state.upcoming_sleep, state.outcome.result())

    return Retrying(
        retry=retry_if_result(is_transient),
        wait=FullJitter(base, cap, rng),
        stop=stop_after_attempt(attempts) | StopAtDeadline(deadline, clock),
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
