"""Property: no input, however malformed, causes an unhandled exception, a leak of internals,
or a write outside the principal's tenant. Hypothesis drives every contract through the
orchestrator's pre-validation and, when valid, the real tool handler on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.catalog import Catalog, ValidCall
from orchestrator.limits import Limits
from orchestrator.types import ErrorKind, Observation, ToolCall
from tests.conftest import Database
from tests.fakes import ALICE
from tests.security.conftest import GLOBEX_DATA, VALID, CountingInvoker
from tools.registry import CONTRACTS

CATALOG = Catalog(CONTRACTS)
FUTURE = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)
PLAUSIBLE = [
    "C-1001",
    "C-1003",
    "C-2001",
    "C-99999999",
    "CDG",
    "JFK",
    "PAR",
    "LHR",
    "gold",
    "diamond",
    "business",
    "economy",
    FUTURE.isoformat(),
    "2001-01-01",
    "a@b.example",
    "x'OR'1'='1--@e.co",
    "'; DROP TABLE customers; --",
    "",
    " ",
    "\u0000",
    "C-1001\u200b",
]
LEAKS = ("Traceback", "psycopg", "SELECT ", "INSERT ", "password", "lockgate_", 'File "')

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(PLAUSIBLE),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def arguments_for(field_names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    # Biased towards plausible values so that many calls pass validation and reach the database.
    value = st.one_of(st.sampled_from(PLAUSIBLE), st.sampled_from(PLAUSIBLE), json_values)
    known = st.fixed_dictionaries({}, optional=dict.fromkeys(field_names, value))
    extra = st.dictionaries(st.sampled_from(["tenant_id", "user_id", "x"]), json_values, max_size=2)
    sometimes_extra = st.one_of(st.just({}), st.just({}), st.just({}), extra)
    return st.tuples(known, sometimes_extra).map(lambda pair: {**pair[1], **pair[0]})


def mutated(tool: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A valid call with at most one field replaced: most reach the database."""
    base = VALID[tool]
    field = st.sampled_from(list(base))
    value = st.one_of(st.sampled_from(PLAUSIBLE), json_values)
    change = st.one_of(st.just(None), st.tuples(field, value))
    return change.map(lambda c: (tool, base if c is None else {**base, c[0]: c[1]}))


calls = st.one_of(
    st.sampled_from(CONTRACTS).flatmap(
        lambda spec: st.tuples(st.just(spec.name), arguments_for(list(spec.input.model_fields)))
    ),
    st.sampled_from(list(VALID)).flatmap(mutated),
)


def test_no_input_breaks_a_tool_or_crosses_a_tenant(
    database: Database, invoker: CountingInvoker
) -> None:
    globex_before = database.rows("SELECT * FROM customers WHERE tenant_id = 'globex' ORDER BY id")
    keys = itertools.count()
    outcomes: list[str] = []

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(calls)
    def check(tool_and_arguments: tuple[str, dict[str, Any]]) -> None:
        tool, arguments = tool_and_arguments
        call = ToolCall(call_id="f", tool=tool, arguments=json.dumps(arguments))
        prepared = CATALOG.prepare(call, ALICE, Limits())
        if isinstance(prepared, ValidCall):
            observation = invoker.invoke(
                tool,
                {
                    "principal": ALICE.model_dump(mode="json"),
                    "input": prepared.input,
                    "idempotency_key": f"fuzz:{next(keys)}",
                },
            )
        else:
            observation = prepared
        assert isinstance(observation, Observation)
        assert observation.status in {"ok", "error"}
        if observation.status == "error":
            assert observation.error_kind in set(ErrorKind)
            assert observation.error_kind is not ErrorKind.INTERNAL
        text = json.dumps([observation.output, observation.message], default=str)
        sent = json.dumps(arguments)
        for leak in (*LEAKS, *GLOBEX_DATA):
            # Echoing the model's own (invalid) value back is fine; anything else is a leak.
            assert leak not in text or leak in sent
        outcomes.append(f"{tool}:{observation.status}")

    check()

    assert (
        database.rows("SELECT * FROM customers WHERE tenant_id = 'globex' ORDER BY id")
        == globex_before
    )
    assert database.rows("SELECT DISTINCT tenant_id FROM bookings") in ([], [("acme",)])
    assert database.rows("SELECT DISTINCT booked_by FROM bookings") in ([], [("alice",)])
    # The fuzzer reached the database, not only the validator.
    assert {f"{spec.name}:ok" for spec in CONTRACTS} <= set(outcomes)
