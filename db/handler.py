"""Migration custom resource: on every deploy that changes the contracts or the migrations,
apply db/migrations and sync one PostgreSQL role per tool, exactly as local mode does.

CloudFormation invokes this Lambda directly (Custom::LockgateMigrations) and waits for the
answer on a pre-signed S3 URL, reached through the VPC's S3 gateway endpoint. Deleting the
resource changes nothing: the data outlives the stack's custom resource.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from tools.kit.settings import DatabaseCredentials
from tools.registry import CONTRACTS

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="lockgate-migrations")
PHYSICAL_ID = "lockgate-migrations"


def run(properties: Mapping[str, Any]) -> list[str]:
    """Migrate as the master user; give each tool role the password its secret holds."""
    # The driver and the AWS SDK load here, inside the handler's `try`: a failure to load them
    # reaches CloudFormation as FAILED, and a Delete never loads them.
    import psycopg
    from aws_lambda_powertools.utilities import parameters

    from tools.kit.redact import hide_secret_values

    hide_secret_values()

    from db.migrate import migrate, seed

    master = DatabaseCredentials.model_validate(
        parameters.get_secret(properties["MasterSecretArn"], transform="json")
    )
    passwords = {
        role: str(parameters.get_secret(arn, transform="json")["password"])
        for role, arn in dict(properties["ToolSecretArns"]).items()
    }
    with psycopg.connect(
        host=master.host,
        port=master.port,
        dbname=master.dbname,
        user=master.username,
        password=master.password.get_secret_value(),
        sslmode="require" if master.ssl else "disable",  # RDS secrets carry no flag: TLS
        connect_timeout=10,
        autocommit=True,
    ) as conn:
        applied = migrate(conn, CONTRACTS, passwords)
        if properties.get("Seed") == "true":
            seed(conn)
    return applied


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    """CloudFormation custom resource entry point."""
    status, reason, data = "SUCCESS", "", {}
    if event["RequestType"] in ("Create", "Update"):
        try:
            applied = run(event["ResourceProperties"])
            logger.info("migrations applied", extra={"applied": applied})
            data = {"Applied": ",".join(applied) or "none"}
        except Exception as exc:  # any failure must reach CloudFormation, or the deploy hangs
            logger.exception("migration failed")
            status, reason = (
                "FAILED",
                f"{type(exc).__name__} (log stream {context.log_stream_name})",
            )
    _respond(event, status, reason, data)


def _respond(event: Mapping[str, Any], status: str, reason: str, data: Mapping[str, str]) -> None:
    url = str(event["ResponseURL"])
    if not url.startswith("https://"):
        raise ValueError("ResponseURL must be https")
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or status,
            "PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": dict(data),
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310  # https only, checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        logger.info("answered cloudformation", extra={"status": status, "http": response.status})
