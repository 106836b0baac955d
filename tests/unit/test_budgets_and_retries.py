from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from orchestrator import wiring
from orchestrator.catalog import Catalog
from orchestrator.limits import Limits
from orchestrator.loop import Orchestrator
from orchestrator.models.scripted import ScriptedModel
from orchestrator.ports import ModelRequest
from orchestrator.pricing import Price, PriceTable
from orchestrator.settings import OrchestratorSettings
from orchestrator.stores.memory import MemoryStore
from orchestrator.types import (
    ErrorKind,
    FinalAnswer,
    ModelTurn,
    Observation,
    Outcome,
    SessionState,
    ToolCall,
    Usage,
)
from tests.fakes import ALICE, EventLog, RecordingInvoker
from tools.registry import CONTRACTS


class FakeClock:
    """Time that only moves when the code sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class PricedModel(ScriptedModel):
    """A scripted model that reports fixed usage under a priced model id."""

    def __init__(self, decisions: list[Any], model_id: str, usage: Usage, **kw: Any) -> None:
        super().__init__(decisions, **kw)
        self._id, self._usage = model_id, usage

    @property
    def model_id(self) -> str:
        return self._id

    def decide(self, request: ModelRequest) -> ModelTurn:
        turn = super().decide(request)
        return replace(turn, usage=self._usage, model_id=self._id)


def lookup(n: int) -> ToolCall:
    return ToolCall(
        call_id="c", tool="customer_lookup", arguments=json.dumps({"customer_id": f"C-{1000 + n}"})
    )


PRICES = PriceTable(
    prices={
        "router": Price(input_per_mtok=1.0, output_per_mtok=2.0),
        "writer": Price(input_per_mtok=10.0, output_per_mtok=20.0),
    }
)


def transient_then_ok(failures: int, retry_after: float | None = None) -> RecordingInvoker:
    count = {"n": 0}

    def respond(tool: str, envelope: Mapping[str, Any]) -> Observation:
        count["n"] += 1
        if count["n"] <= failures:
            details = {} if retry_after is None else {"retry_after_seconds": retry_after}
            return Observation(
                status="error", error_kind=ErrorKind.TRANSIENT, message="busy", details=details
            )
        return Observation(status="ok", output={"n": count["n"]})

    return RecordingInvoker(respond)


def orchestrate(
    invoker: RecordingInvoker, clock: FakeClock, limits: Limits, seed: int = 7, **kw: Any
) -> Orchestrator:
    return Orchestrator(
        catalog=Catalog(CONTRACTS),
        model=kw.pop("model", ScriptedModel([lookup(1), FinalAnswer(text="ok")])),
        invoker=invoker,
        store=MemoryStore(),
        limits=limits,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(seed),
        **kw,
    )


def test_transient_failures_are_retried_with_full_jitter_schedule() -> None:
    clock, events = FakeClock(), EventLog()
    limits = Limits(tool_attempts=4, retry_base_seconds=0.5, retry_max_seconds=8)
    orchestrator = orchestrate(transient_then_ok(2), clock, limits, events=events)
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    expected_rng = random.Random(7)
    expected = [expected_rng.uniform(0, 0.5), expected_rng.uniform(0, 1.0)]
    assert clock.sleeps == expected
    assert state.outcome is Outcome.COMPLETED
    assert state.steps[0].attempts == 3
    assert state.retries == 2
    assert state.steps[0].observation is not None and state.steps[0].observation.output == {"n": 3}
    assert events.kinds().count("tool_retry") == 2


def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    orchestrator = orchestrate(
        transient_then_ok(1, retry_after=5), clock, Limits(retry_max_seconds=8)
    )
    orchestrator.run(orchestrator.start("s", "r", ALICE))
    assert clock.sleeps == [5.0]


def test_permanent_transient_failure_ends_as_data_after_bounded_attempts() -> None:
    clock = FakeClock()
    invoker = transient_then_ok(100)
    orchestrator = orchestrate(invoker, clock, Limits(tool_attempts=3))
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert len(invoker.calls) == 3
    assert len(clock.sleeps) == 2
    observation = state.steps[0].observation
    assert observation is not None and observation.error_kind is ErrorKind.TRANSIENT
    assert state.outcome is Outcome.COMPLETED  # the model saw the error and answered


def test_retries_stop_at_the_session_deadline() -> None:
    clock = FakeClock()
    invoker = transient_then_ok(100, retry_after=4)
    orchestrator = orchestrate(invoker, clock, Limits(tool_attempts=10, max_seconds=10))
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert clock.now - 1_000.0 < 10
    assert len(invoker.calls) == 3  # 0 s, 4 s, 8 s; the next wait would pass the deadline
    assert state.outcome in {Outcome.COMPLETED, Outcome.BUDGET_EXHAUSTED}


def test_wall_clock_budget_stops_with_partial_result() -> None:
    clock = FakeClock()

    class SlowInvoker(RecordingInvoker):
        def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
            clock.now += 4
            return super().invoke(tool, envelope)

    model = ScriptedModel([lookup(i) for i in range(10)])
    orchestrator = orchestrate(SlowInvoker(), clock, Limits(max_seconds=10), model=model)
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.outcome is Outcome.BUDGET_EXHAUSTED
    assert state.exhausted == "wall_clock"
    assert len(state.partial_result()) == 3


def test_usd_budget_never_starts_an_unaffordable_call() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100)  # $0.0012 per router call
    model = PricedModel([lookup(i) for i in range(10)], "router", usage)
    orchestrator = orchestrate(
        RecordingInvoker(), FakeClock(), Limits(max_usd=0.005), model=model, prices=PRICES
    )
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.outcome is Outcome.BUDGET_EXHAUSTED
    assert state.exhausted == "usd"
    assert state.cost_usd <= 0.005
    # Four calls cost $0.0048; a fifth, estimated at over $0.0012, would pass $0.005.
    assert len(state.steps) == 4


def test_token_budget_counts_the_next_calls_estimate() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100)
    model = PricedModel([lookup(i) for i in range(10)], "router", usage)
    orchestrator = orchestrate(
        RecordingInvoker(), FakeClock(), Limits(max_tokens=4_000), model=model, prices=PRICES
    )
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.exhausted == "tokens"
    assert state.usage.total <= 4_000
    # Three calls use 3,300 tokens; a fourth, estimated at over 1,100, would pass 4,000.
    assert len(state.steps) == 3


def test_router_and_synthesizer_usage_is_reported_per_model() -> None:
    router = PricedModel(
        [lookup(1), FinalAnswer(text="router draft")],
        "router",
        Usage(input_tokens=500, output_tokens=20),
    )
    writer = PricedModel(
        [FinalAnswer(text="Ada is a gold customer.")],
        "writer",
        Usage(input_tokens=800, output_tokens=50),
        by_history=False,
    )
    orchestrator = orchestrate(
        RecordingInvoker(), FakeClock(), Limits(), model=router, synthesizer=writer, prices=PRICES
    )
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.answer == "Ada is a gold customer."
    assert state.usage_by_model == {
        "router": Usage(input_tokens=1_000, output_tokens=40),
        "writer": Usage(input_tokens=800, output_tokens=50),
    }
    assert abs(state.cost_usd - ((1_000 * 1 + 40 * 2) + (800 * 10 + 50 * 20)) / 1e6) < 1e-12
    assert state.steps[-1].synthesis is not None


def test_synthesizer_is_skipped_when_it_cannot_be_afforded() -> None:
    router = PricedModel(
        [FinalAnswer(text="router answer")], "router", Usage(input_tokens=500, output_tokens=20)
    )
    writer = PricedModel(
        [FinalAnswer(text="never")],
        "writer",
        Usage(input_tokens=800, output_tokens=50),
        by_history=False,
    )
    orchestrator = orchestrate(
        RecordingInvoker(),
        FakeClock(),
        Limits(max_usd=0.002),
        model=router,
        synthesizer=writer,
        prices=PRICES,
    )
    state = orchestrator.run(orchestrator.start("s", "r", ALICE))

    assert state.answer == "router answer"
    assert set(state.usage_by_model) == {"router"}


def test_prices_ignore_cross_region_prefixes_and_scripted_models_are_free() -> None:
    table = PriceTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert (
        table.cost("eu.amazon.nova-lite-v1:0", usage)
        == table.cost("amazon.nova-lite-v1:0", usage)
        == 0.30
    )
    assert table.cost("scripted:demo", usage) == 0
    assert table.cost("unknown-model", usage) == 18.0


def test_cached_prompt_tokens_are_billed_at_their_own_rates() -> None:
    price = Price(input_per_mtok=1.0, output_per_mtok=5.0)
    usage = Usage(
        input_tokens=100, output_tokens=10, cache_read_tokens=1_000, cache_write_tokens=200
    )
    # 100 x 1 + 10 x 5 + 1,000 x 0.1 + 200 x 1.25, per million
    assert abs(price.of(usage) - 500 / 1e6) < 1e-12
    assert usage.total == 1_310
    explicit = Price(
        input_per_mtok=1.0, output_per_mtok=5.0, cache_read_per_mtok=0.0, cache_write_per_mtok=1.0
    )
    assert abs(explicit.of(usage) - 350 / 1e6) < 1e-12


def test_configured_prices_replace_the_fallback_for_a_local_model() -> None:
    # Given a model on the team's own OpenAI-compatible server, priced at zero by LOCKGATE_PRICES,
    # when a session with a dollar budget runs many priced calls, then the budget is never hit;
    # without the override the same model is billed at the (high) fallback and stops early.
    config = OrchestratorSettings.from_env(
        {"LOCKGATE_PRICES": '{"openai:qwen2.5-1.5b": {"input_per_mtok": 0, "output_per_mtok": 0}}'}
    )
    usage = Usage(input_tokens=10_000, output_tokens=500)
    decisions: list[Any] = [lookup(i) for i in range(5)] + [FinalAnswer(text="done")]

    def run(prices: PriceTable) -> SessionState:
        model = PricedModel(list(decisions), "openai:qwen2.5-1.5b", usage)
        orchestrator = orchestrate(
            RecordingInvoker(), FakeClock(), Limits(max_usd=0.05), model=model, prices=prices
        )
        return orchestrator.run(orchestrator.start("s", "r", ALICE))

    free = run(wiring.price_table(config))
    assert free.outcome is Outcome.COMPLETED
    assert free.cost_usd == 0
    billed = run(PriceTable())
    assert billed.outcome is Outcome.BUDGET_EXHAUSTED
    assert billed.exhausted == "usd"


def test_default_prices_cover_each_provider_by_spec() -> None:
    table = PriceTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("openai:gpt-4o-mini", usage) == pytest.approx(0.75)
    assert table.cost("anthropic:claude-3-5-haiku-latest", usage) == pytest.approx(4.80)
    assert table.cost("bedrock:amazon.nova-lite-v1:0", usage) == table.cost(
        "amazon.nova-lite-v1:0", usage
    )
    assert table.cost("openai:unknown-model", usage) == table.fallback.of(usage)
