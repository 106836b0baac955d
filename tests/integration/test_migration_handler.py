"""The cloud migration custom resource's work, against real PostgreSQL and moto's Secrets
Manager: the schema is applied and every tool role can log in with its own secret."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from db.handler import run
from tests.conftest import Server, Template
from tools.registry import CONTRACTS


@pytest.fixture
def empty_database(pg_server: Server, template_db: Template) -> Iterator[str]:
    name = f"lockgate_m_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        # The roles are cluster-wide: give them back the suite's passwords.
    with psycopg.connect(pg_server.url(template_db.name), autocommit=True) as conn:
        from db.migrate import migrate

        migrate(conn, CONTRACTS, template_db.passwords)


def test_migrations_apply_and_every_tool_role_logs_in_with_its_secret(empty_database: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(empty_database)
    with mock_aws():
        manager = boto3.client("secretsmanager", region_name="eu-west-1")

        def secret(name: str, value: dict[str, object]) -> str:
            return str(manager.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

        master = secret(
            "lockgate/master",
            {
                "host": params["host"],
                "port": int(str(params["port"])),
                "dbname": params["dbname"],
                "username": params["user"],
                "password": params["password"],
                "ssl": False,
            },
        )
        tool_passwords = {
            s.db_role: secrets.token_urlsafe(16) for s in CONTRACTS if s.needs_database
        }
        arns = {
            role: secret(f"lockgate/{role}", {"password": pw})
            for role, pw in tool_passwords.items()
        }

        applied = run({"MasterSecretArn": master, "ToolSecretArns": arns, "Seed": "true"})

    assert applied == ["0001_core", "0002_demo_schema"]
    for role, password in tool_passwords.items():
        with psycopg.connect(
            host=params["host"],
            port=params["port"],
            dbname=params["dbname"],
            user=role,
            password=password,
        ) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM airports").fetchone()[0] > 0  # type: ignore[index]
    # A second deploy applies nothing new and keeps the roles working.
    with mock_aws():
        manager = boto3.client("secretsmanager", region_name="eu-west-1")
        master = str(
            manager.create_secret(
                Name="m",
                SecretString=json.dumps(
                    {
                        "host": params["host"],
                        "port": int(str(params["port"])),
                        "dbname": params["dbname"],
                        "username": params["user"],
                        "password": params["password"],
                        "ssl": False,
                    }
                ),
            )["ARN"]
        )
        assert run({"MasterSecretArn": master, "ToolSecretArns": {}}) == []
