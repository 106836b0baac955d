"""The one path from a proposed call to a tool result: catalog lookup, pre-validation, invoke.

The routing loop and the MCP face both go through a `ToolGate`, so a call is looked up,
checked, refused or invoked (with the same envelope, retries and idempotency key rules)
whoever proposed it. Pure: the invoker is a port.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.catalog import Catalog, ValidCall
from orchestrator.limits import Limits
from orchestrator.ports import ToolInvoker
from orchestrator.retry import is_transient, retrying
from orchestrator.types import Observation, Principal, ToolCall

RetryHook = Callable[[int, float, Observation], None]
"""Told of each retry: the attempt that failed, the delay before the next, its observation."""


class ToolGate:
    """Checks calls against the catalog and invokes the valid ones.

    `clock`, `sleep` and `rng` are injectable so retry schedules are deterministic in tests.
    """

    def __init__(
        self,
        catalog: Catalog,
        invoker: ToolInvoker,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.catalog = catalog
        self.invoker = invoker
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._rng = rng  # built on the first retry: seeding one reads the OS entropy pool

    def prepare(self, call: ToolCall, principal: Principal) -> ValidCall | Observation:
        """A valid call, or the exact error for the caller: an unknown or hidden tool, bad
        JSON, sizes beyond the limits, or the tool's `Input` refusing the arguments."""
        return self.catalog.prepare(call, principal, self.limits)

    def invoke(
        self,
        call: ValidCall,
        principal: Mapping[str, Any],
        idempotency_key: str,
        *,
        deadline: float | None = None,
        on_retry: RetryHook | None = None,
    ) -> tuple[Observation, int]:
        """Invoke once, retrying transient failures (bounded by attempts and `deadline`), and
        return the observation with the number of attempts. Every attempt carries the same
        idempotency key, so a retried write cannot write twice."""
        envelope = {
            "principal": dict(principal),
            "input": call.input,
            "idempotency_key": idempotency_key,
        }
        tool = call.spec.name
        first = self.invoker.invoke(tool, envelope)
        if not is_transient(first) or self.limits.tool_attempts == 1:
            return first, 1  # the common case: no retry machinery is built
        attempts = 1
        pending: list[Observation] = [first]

        def attempt() -> Observation:
            nonlocal attempts
            if pending:  # the first attempt already happened above
                return pending.pop()
            attempts += 1
            return self.invoker.invoke(tool, envelope)

        if self._rng is None:
            self._rng = random.Random()  # noqa: S311  # jitter, not cryptography
        controller = retrying(
            attempts=self.limits.tool_attempts,
            base=self.limits.retry_base_seconds,
            cap=self.limits.retry_max_seconds,
            rng=self._rng,
            sleep=self._sleep,
            clock=self._clock,
            deadline=deadline,
            on_retry=on_retry or (lambda _attempt, _delay, _observation: None),
        )
        observation: Observation = controller(attempt)
        return observation, attempts

    def run(
        self,
        call: ToolCall,
        principal: Principal,
        idempotency_key: str,
        *,
        deadline: float | None = None,
    ) -> tuple[Observation, bool]:
        """Prepare and, if valid, invoke one call: the observation, and whether it was
        invoked (a refused call never reaches the invoker)."""
        prepared = self.prepare(call, principal)
        if isinstance(prepared, Observation):
            return prepared, False
        observation, _ = self.invoke(
            prepared, principal.model_dump(mode="json"), idempotency_key, deadline=deadline
        )
        return observation, True
