"""The published OpenAPI document against the handlers' real answers: a bounded schemathesis
run against `lockgate serve` over HTTP. Every answer must be a documented status with a body
that matches its schema, and no input may cause a server error."""

from __future__ import annotations

import json
import secrets
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from psycopg import sql
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from db.migrate import migrate
from orchestrator.handlers.api import openapi_document
from tests.conftest import Server, Template
from tests.e2e.serving import Serve
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_dict(json.loads(openapi_document()))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(pg_server: Server, template_db: Template) -> Iterator[tuple[str, dict[str, str]]]:
    name = f"lockgate_fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db.name)
            )
        )
    home = Path(tempfile.mkdtemp(prefix="lockgate-fuzz-"))
    server = Serve(pg_server.url(name), home, workers=2)
    server.start()
    try:
        yield server.url, server.headers("alice")
    finally:
        server.stop(signal.SIGTERM)
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            migrate(conn, CONTRACTS, template_db.passwords)  # serve set its own passwords
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case, served: tuple[str, dict[str, str]]
) -> None:
    url, auth = served
    case.call_and_validate(base_url=url, headers=auth, checks=CHECKS)
