"""weather_lookup through the orchestrator against a fault-injecting upstream: retries with
backoff and full jitter, Retry-After honoured, bounded attempts, clean failure."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from local.weather import forecast_for
from orchestrator.catalog import Catalog
from orchestrator.invokers.in_process import InProcessInvoker
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import ErrorKind, FinalAnswer, Outcome, SessionState, ToolCall
from tests.fakes import ALICE
from tests.unit.test_budgets_and_retries import FakeClock
from tests.upstream import OK, Fault, faulty_upstream, seeded_schedule
from tools.kit.settings import ToolSettings
from tools.registry import CONTRACTS

DAY = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()
TIMEOUT = 0.3
SEED = 11


def session(url: str, clock: FakeClock, limits: Limits) -> SessionState:
    invoker = InProcessInvoker(
        {"weather_lookup": ToolSettings(upstream_url=url, upstream_timeout_seconds=TIMEOUT)}
    )
    script = [
        ToolCall(
            call_id="c",
            tool="weather_lookup",
            arguments=json.dumps({"airport": "JFK", "date": DAY}),
        ),
        FinalAnswer(text="done"),
    ]
    orchestrator = Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=ScriptedModel(script),
        invoker=invoker,
        store=MemoryStore(),
        limits=limits,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(SEED),
    )
    return orchestrator.run(orchestrator.start("w", "weather at JFK", ALICE))


def test_throttling_and_gateway_errors_are_retried_on_the_exact_schedule() -> None:
    clock = FakeClock()
    with faulty_upstream([Fault(429, retry_after=2), Fault(502), OK]) as upstream:
        state = session(upstream.url, clock, Limits(tool_attempts=4))

    rng = random.Random(SEED)
    first, second = rng.uniform(0, 0.5), rng.uniform(0, 1.0)
    assert clock.sleeps == [max(first, 2.0), second]
    assert upstream.requests == 3
    assert state.outcome is Outcome.COMPLETED
    step = state.steps[0]
    assert step.attempts == 3
    assert step.observation is not None
    assert step.observation.output == forecast_for("JFK", DAY)


def test_timeouts_are_transient_and_slow_answers_succeed() -> None:
    clock = FakeClock()
    with faulty_upstream([Fault(delay=TIMEOUT * 3), Fault(delay=TIMEOUT / 3), OK]) as upstream:
        state = session(upstream.url, clock, Limits())

    assert state.steps[0].attempts == 2
    assert state.steps[0].observation is not None and state.steps[0].observation.status == "ok"


def test_permanently_failing_upstream_ends_cleanly_after_bounded_attempts() -> None:
    clock = FakeClock()
    with faulty_upstream([Fault(503)]) as upstream:
        state = session(upstream.url, clock, Limits(tool_attempts=3))

    assert upstream.requests == 3
    assert len(clock.sleeps) == 2
    observation = state.steps[0].observation
    assert observation is not None and observation.error_kind is ErrorKind.TRANSIENT
    assert state.outcome is Outcome.COMPLETED  # the error went back to the model as data


def test_an_upstream_answer_that_is_not_unicode_is_malformed_not_a_crash() -> None:
    forecast = json.dumps(forecast_for("JFK", DAY)).replace("}", ', "x": "\\ud800"}')
    with faulty_upstream([Fault(body=forecast.encode())]) as upstream:
        state = session(upstream.url, FakeClock(), Limits())

    observation = state.steps[0].observation
    assert observation is not None and observation.error_kind is ErrorKind.INTERNAL
    assert upstream.requests == 1  # malformed is permanent: not retried
    assert state.outcome is Outcome.COMPLETED


@pytest.mark.parametrize("seed", range(6))
def test_seeded_fault_schedules_all_recover(seed: int) -> None:
    schedule = seeded_schedule(seed, hang=TIMEOUT * 3, slow=TIMEOUT / 3)
    clock = FakeClock()
    with faulty_upstream(schedule) as upstream:
        state = session(upstream.url, clock, Limits(tool_attempts=5))

    expected = (
        schedule.index(next(f for f in schedule if f.status == 200 and f.delay < TIMEOUT)) + 1
    )
    assert upstream.requests == expected
    assert state.steps[0].attempts == expected
    assert state.steps[0].observation is not None and state.steps[0].observation.status == "ok"
