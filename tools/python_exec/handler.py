"""python_exec Lambda: the static check, then one child process per program.

The tool holds no database connection, no secret and no upstream: its role can only write its
own logs, and in the cloud its network interface has no route or rule that leads anywhere.
"""

from __future__ import annotations

import functools
import time

from tools.kit.envelope import ErrorKind, ToolError
from tools.kit.handler import ToolContext, tool_handler
from tools.python_exec.contract import SPEC, Input, Output, Timings
from tools.python_exec.policy import allowlist, check
from tools.python_exec.sandbox import Failed, SandboxSettings, run_program


@functools.cache
def sandbox_settings() -> SandboxSettings:
    """The function's limits, read once per cold start."""
    return SandboxSettings.from_env()


def execute(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Refuse the program with the rule it breaks, or run it and return its value."""
    settings = sandbox_settings()
    started = time.perf_counter()
    allowed = allowlist(settings.numeric)
    refusal = check(data.code, allowed)
    check_ms = (time.perf_counter() - started) * 1000
    if refusal is not None:
        return ToolError(
            kind=ErrorKind.VALIDATION,
            message=f"{refusal.message.rstrip('.')}. Nothing ran; rewrite the program and call again.",
            details=refusal.details(),
        )
    outcome = run_program(data.code, data.inputs, settings, allowed)
    total_ms = (time.perf_counter() - started) * 1000
    if isinstance(outcome, Failed):
        return ToolError(
            kind=ErrorKind.VALIDATION, message=outcome.message, details=dict(outcome.details)
        )
    return Output(
        result=outcome.result,
        stdout=outcome.stdout,
        stdout_truncated=outcome.stdout_truncated,
        timings=Timings(check_ms=check_ms, run_ms=outcome.run_ms, total_ms=total_ms),
    )


handler = tool_handler(SPEC, execute)
