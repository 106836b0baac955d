"""The embedded PostgreSQL as a user's commands run it: a killed command does not leave its
server running, and a server stopped and started again is where its clients left it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from local.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster_root() -> Iterator[Path]:
    scratch = Path(tempfile.mkdtemp(prefix="lockgate-embedded-"))
    scratch.chmod(0o755)
    yield scratch / "cluster"
    EmbeddedPostgres(scratch / "cluster").stop()
    subprocess.run(["rm", "-rf", str(scratch)], check=False)


def test_a_restarted_server_keeps_its_port(cluster_root: Path) -> None:
    server = EmbeddedPostgres(cluster_root, durable=False)
    server.start()
    first = server.port
    with psycopg.connect(server.url()) as conn:
        conn.execute("SELECT 1")
    server.stop()
    assert server.running_port() is None

    again = EmbeddedPostgres(cluster_root, durable=False)
    again.start()
    assert again.port == first
    with psycopg.connect(server.url()) as conn:  # the old URL still reaches it
        conn.execute("SELECT 1")
    again.stop()


def test_a_killed_command_does_not_leave_its_server_running(cluster_root: Path) -> None:
    # Given a command that started the server for its block, and is then killed with SIGKILL
    script = (
        "import sys, time; from pathlib import Path; from local.postgres import embedded\n"
        f"with embedded(Path({str(cluster_root)!r})) as server:\n"
        "    print(server.port, flush=True); time.sleep(600)\n"
    )
    command = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert command.stdout is not None
    port = int(command.stdout.readline())
    assert EmbeddedPostgres(cluster_root).running_port() == port
    command.kill()
    command.wait()

    # Then the server stops on its own (the bound is only how long the test waits)
    deadline = time.monotonic() + 60
    while EmbeddedPostgres(cluster_root).running_port() is not None:
        assert time.monotonic() < deadline, "the server outlived the killed command"
        time.sleep(0.2)
