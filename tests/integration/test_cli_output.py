"""`lockgate run` as a person or a script runs it: a separate process with real stdout and
stderr pipes (strict UTF-8), on the suite's PostgreSQL. Whatever the model or a tool does,
the process neither crashes nor lets anything but the document reach stdout with `--json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from db.migrate import migrate
from tests.conftest import Database, Template
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
BOOK = (
    "  - tool: flight_book\n"
    "    arguments: {customer_id: C-1001, origin: CDG, destination: JFK,"
    ' date: "{today+10}", cabin: business}\n'
)


@pytest.fixture
def cli_database(database: Database, template_db: Template) -> Iterator[Database]:
    yield database
    # The CLI gives the (cluster-wide) tool roles fresh passwords; restore the suite's.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        migrate(conn, CONTRACTS, template_db.passwords)


def lockgate(database: Database, home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "LOCKGATE_DATABASE_URL": database.admin_url,
        "LOCKGATE_HOME": str(home),
        "PYTHONIOENCODING": "utf-8:strict",  # what a UTF-8 terminal or pipe gives
    }
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=300,
    )


def test_json_stdout_is_only_the_document_when_a_tool_fails_internally(
    cli_database: Database, tmp_path: Path
) -> None:
    # Given a database on which every booking insert fails (a bug the tool does not expect)
    with psycopg.connect(cli_database.admin_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'storage failure'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    script = tmp_path / "book.yaml"
    script.write_text(f"steps:\n{BOOK}  - final: could not book\n")

    # When a script runs the session with --json
    result = lockgate(
        cli_database, tmp_path, "run", "book", "--model", f"scripted:{script}", "--json"
    )

    # Then stdout is exactly one JSON document, and the tool's error log went to stderr
    document = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    observation = document["steps"][0]["observation"]
    assert document["steps"][0]["invoked"] and observation["error_kind"] == "internal"
    assert b"Traceback" in result.stderr and b"storage failure" in result.stderr
    assert cli_database.rows("SELECT count(*) FROM bookings") == [(0,)]


def test_the_human_trace_survives_invalid_unicode_and_escapes_terminal_codes(
    cli_database: Database, tmp_path: Path
) -> None:
    # Given a model that sends a lone surrogate in its arguments (the YAML escape is one code
    # point, U+D800), then corrects itself, then answers with terminal commands
    script = tmp_path / "hostile.yaml"
    script.write_text(
        "steps:\n"
        '  - tool: customer_lookup\n    arguments: "{\\"customer_id\\": \\"C-1001\\ud800\\"}"\n'
        "  - tool: customer_lookup\n    arguments: {customer_id: C-1001}\n"
        '  - final: "\\e]0;owned\\a\\e[2J\\e[31mdone\\x9b0m"\n'
    )

    # When it runs without --json (the trace on stdout)
    result = lockgate(
        cli_database, tmp_path, "run", "look up C-1001", "--model", f"scripted:{script}"
    )

    # Then the session completes and the trace is valid UTF-8 with no control character in it
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    trace = result.stdout.decode("utf-8")
    assert {c for c in trace if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F} == set()
    assert "rejected before invoking" in trace
    assert "\\x1b]0;owned\\x07" in trace
