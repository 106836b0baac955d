"""`lockgate serve` as a subprocess on a test database: started, waited for, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from local.auth import issue_token
from local.cli import DEMO_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = f"scripted:{DEMO_SCRIPT}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """One `lockgate serve` process on a test database; can be killed and started again."""

    def __init__(
        self, admin_url: str, home: Path, model: str = DEFAULT_MODEL, workers: int = 4
    ) -> None:
        self.admin_url, self.home, self.model, self.workers = admin_url, home, model, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "LOCKGATE_DATABASE_URL": self.admin_url,
            "LOCKGATE_HOME": str(self.home),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.cli",
                "serve",
                "--port",
                str(self.port),
                "--model",
                self.model,
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "lockgate serve did not start"
            time.sleep(0.1)

    def output(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.read()

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.home, user)}"}
