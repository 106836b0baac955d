"""The parent side of python_exec: one fresh child process per program, watched and discarded.

The child is a new interpreter (`-I -S -B`: no environment variables, no site packages, no
user directories, no bytecode written) running `runner.py`, with an empty environment (no
credentials, no `AWS_*`), in an empty working directory of its own that is removed afterwards,
in a session of its own so that a kill reaches everything it is. The parent writes the request,
reads at most a bounded amount back, and kills the child when the wall clock runs out; the
child's own CPU and memory limits are set by the runner before the program starts. Nothing
survives into the next call: not the process, not its files, not its modules.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from tools.kit.settings import from_variables
from tools.python_exec import runner
from tools.python_exec.policy import Allowlist, modules_used

RUNNER = Path(runner.__file__).resolve()
# How long a child may take to start and to hand its answer back, beyond its CPU limit.
_STARTUP_SECONDS = 3.0
_READ_CHUNK = 65_536
# Variables the numeric libraries read to stay single-threaded (no new threads are allowed).
_NUMERIC_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_ENVIRONMENT = {
    "LOCKGATE_PYTHON_CPU_SECONDS": "cpu_seconds",
    "LOCKGATE_PYTHON_MEMORY_MB": "memory_mb",
    "LOCKGATE_PYTHON_NUMERIC": "numeric",
}


class SandboxSettings(BaseModel):
    """The limits of one program run (read once from the function's environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: int = Field(default=5, ge=1, le=60, description="CPU time per program.")
    memory_mb: int = Field(
        default=128, ge=16, le=4096, description="Address space the program may add."
    )
    max_stdout_chars: int = Field(default=16_000, ge=0)
    max_result_chars: int = Field(default=64_000, ge=16)
    max_result_depth: int = Field(default=32, ge=1, le=200)
    max_result_items: int = Field(default=100_000, ge=1)
    numeric: bool = Field(default=False, description="Offer numpy and pandas (their layer).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SandboxSettings:
        """Read the function's environment."""
        return cls.model_validate(from_variables(_ENVIRONMENT, environ))

    @property
    def wall_seconds(self) -> float:
        """When the parent kills the child, whatever it is doing."""
        return self.cpu_seconds + _STARTUP_SECONDS

    @property
    def max_response_bytes(self) -> int:
        """The most a well-behaved child can write back (its answer), with room for JSON."""
        return 4 * (self.max_result_chars + self.max_stdout_chars) + 16_384


class _ChildError(BaseModel):
    kind: Literal["limit", "error"]
    message: str = Field(max_length=2_000)
    details: dict[str, JsonValue] = Field(default_factory=dict)


class _Answer(BaseModel):
    """What the child writes back: checked like any untrusted input (a program that broke out
    of the runner could write an answer of its own)."""

    ok: bool
    result: JsonValue = None
    stdout: str = ""
    stdout_truncated: bool = False
    run_ms: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    isolation: dict[str, str] = Field(default_factory=dict)
    error: _ChildError | None = None


@dataclass(frozen=True)
class Ran:
    """The program finished: its value, its printed text and how long it ran."""

    result: Any
    stdout: str
    stdout_truncated: bool
    run_ms: float
    isolation: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The program raised, or hit a limit (`limit` names it), or crashed its interpreter."""

    message: str
    details: Mapping[str, Any]

    @property
    def limit(self) -> str | None:
        """Which limit was hit, if that is why it failed."""
        value = self.details.get("limit")
        return str(value) if value is not None else None


def run_program(
    code: str, inputs: Any, settings: SandboxSettings, allowed: Allowlist
) -> Ran | Failed:
    """Run a program that passed the static check, in a child process, and say what happened.

    The child loads only the allowed modules the program imports: a program that imports
    nothing starts an interpreter and nothing more.
    """
    allowed = allowed.only(modules_used(code))
    request = json.dumps(
        {
            "code": code,
            "inputs": inputs,
            "modules": list(allowed.modules),
            "paths": list(allowed.module_paths()),
            "cpu_seconds": settings.cpu_seconds,
            "memory_bytes": settings.memory_mb * 1024 * 1024,
            "max_stdout_chars": settings.max_stdout_chars,
            "max_result_chars": settings.max_result_chars,
            "max_result_depth": settings.max_result_depth,
            "max_result_items": settings.max_result_items,
            "network": "namespace" if _unshare_command() else "",
        }
    ).encode()
    workdir = Path(tempfile.mkdtemp(prefix="lockgate-python-"))
    try:
        if os.geteuid() == 0:  # the child drops to nobody; its directory must stay usable
            os.chown(workdir, runner.NOBODY, runner.NOBODY)
        environment = _NUMERIC_ENVIRONMENT if settings.numeric else {}
        child = subprocess.Popen(  # noqa: S603  # our own interpreter and runner, no shell
            [*_unshare_command(), sys.executable, "-I", "-S", "-B", "-X", "utf8", str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=dict(environment),
            start_new_session=True,
            close_fds=True,
        )
        try:
            exchange = _exchange(child, request, settings)
        finally:
            _kill(child)
            cpu_seconds = _reap(child)
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        returncode = child.returncode
        if returncode == -signal.SIGKILL and cpu_seconds >= settings.cpu_seconds:
            returncode = -signal.SIGXCPU  # killed at the hard CPU limit: time, not memory
        return _outcome(exchange, returncode, settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class _Exchange:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    overflowed: bool = False


def _exchange(
    child: subprocess.Popen[bytes], request: bytes, settings: SandboxSettings
) -> _Exchange:
    """Write the request and read the answer, within the wall clock and the size bound."""
    if child.stdin is None or child.stdout is None or child.stderr is None:
        raise RuntimeError("the child was started without pipes")
    exchange = _Exchange()
    deadline = time.monotonic() + settings.wall_seconds
    pending = memoryview(request)
    with selectors.DefaultSelector() as selector:
        for stream in (child.stdin, child.stdout, child.stderr):
            os.set_blocking(stream.fileno(), False)
        selector.register(child.stdin, selectors.EVENT_WRITE)
        selector.register(child.stdout, selectors.EVENT_READ, exchange.stdout)
        selector.register(child.stderr, selectors.EVENT_READ, exchange.stderr)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                exchange.timed_out = True
                return exchange
            for key, _ in selector.select(remaining):
                if key.fileobj is child.stdin:
                    try:
                        written = os.write(key.fd, pending[:_READ_CHUNK])
                    except (BrokenPipeError, BlockingIOError):
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        selector.unregister(child.stdin)
                        child.stdin.close()
                    continue
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer.extend(chunk)
                if len(buffer) > settings.max_response_bytes:
                    exchange.overflowed = True
                    return exchange
    return exchange


@functools.cache
def _unshare_command() -> tuple[str, ...]:
    """Where Python has no `os.unshare` (before 3.12), util-linux's `unshare` starts the child
    in a new network namespace instead, if it works on this machine; else nothing (the child
    then reports that it has no namespace of its own)."""
    if hasattr(os, "unshare"):
        return ()
    unshare, true = shutil.which("unshare"), shutil.which("true")
    if unshare is None or true is None:
        return ()
    command = (unshare, "--net") if os.geteuid() == 0 else (unshare, "--user", "--net")
    try:
        probe = subprocess.run(  # noqa: S603  # fixed arguments, no shell
            [*command, true], capture_output=True, timeout=10, check=False, env={}
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return command if probe.returncode == 0 else ()


def _reap(child: subprocess.Popen[bytes]) -> float:
    """Wait for the child and return the CPU seconds it used."""
    try:
        _, status, usage = os.wait4(child.pid, 0)
    except ChildProcessError:  # already reaped
        child.wait()
        return 0.0
    child.returncode = os.waitstatus_to_exitcode(status)
    return float(usage.ru_utime + usage.ru_stime)


def _kill(child: subprocess.Popen[bytes]) -> None:
    """End the child's whole session (it may not have ended by itself)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()


def _outcome(exchange: _Exchange, returncode: int, settings: SandboxSettings) -> Ran | Failed:
    if exchange.timed_out:
        return _limit_failure("time", settings)
    if exchange.overflowed:
        return Failed(
            message="the program produced more output than allowed; print less",
            details={"limit": "output"},
        )
    try:
        answer = _Answer.model_validate_json(exchange.stdout)
    except ValidationError:
        # No complete answer: the kernel ended the child (the CPU limit's SIGXCPU; SIGKILL
        # when memory ran out), or the interpreter itself crashed.
        if returncode == -signal.SIGXCPU:
            return _limit_failure("time", settings)
        if returncode == -signal.SIGKILL:
            return _limit_failure("memory", settings)
        return Failed(
            message=(
                "the program stopped its interpreter without an answer (exit "
                f"{returncode}); it may be too deeply nested or recursive: write it more simply"
            ),
            details={"limit": "crash", "exit_code": returncode},
        )
    if answer.ok or answer.error is None:
        if len(json.dumps(answer.result)) > settings.max_result_chars:
            return Failed(
                message=f"the result is longer than {settings.max_result_chars} characters as "
                "JSON; return a summary",
                details={"limit": "result_size"},
            )
        return Ran(
            result=answer.result,
            stdout=answer.stdout[: settings.max_stdout_chars],
            stdout_truncated=answer.stdout_truncated,
            run_ms=answer.run_ms,
            isolation=answer.isolation,
        )
    details = dict(answer.error.details)
    if answer.error.kind == "limit":
        if details.get("limit") == "memory":
            return _limit_failure("memory", settings)
        return Failed(message=answer.error.message, details=details)
    line = details.get("line")
    where = f" at line {line}" if line else ""
    return Failed(
        message=f"the program raised {answer.error.message}{where}; fix the program and call again",
        details=details,
    )


def _limit_failure(limit: str, settings: SandboxSettings) -> Failed:
    if limit == "time":
        message = (
            f"the program ran longer than its {settings.cpu_seconds} s limit and was stopped; "
            "compute less (smaller inputs, no unbounded loops) and call again"
        )
    else:
        message = (
            f"the program used more than its {settings.memory_mb} MiB of memory and was "
            "stopped; compute on less data at a time"
        )
    return Failed(message=message, details={"limit": limit})
