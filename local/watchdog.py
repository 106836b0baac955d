"""Stops an embedded PostgreSQL when the command that started it has gone, however it went.

Started by `local.postgres.embedded` with a pipe on its standard input. The pipe closes when
that process exits or is killed; then, if the server is still running, it is stopped.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from local.postgres import EmbeddedPostgres


def main(argv: list[str]) -> int:
    """Wait for the end of standard input, then stop the cluster at `argv[0]`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()
    EmbeddedPostgres(Path(argv[0])).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
