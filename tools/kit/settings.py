"""A tool's configuration, read once from its Lambda environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# Environment variable → field. A plain mapping keeps pydantic-settings out of every tool's
# cold start; the values are still validated by the model.
_ENVIRONMENT = {
    "LOCKGATE_DB_SECRET_ID": "db_secret_id",
    "LOCKGATE_UPSTREAM_URL": "upstream_url",
    "LOCKGATE_UPSTREAM_TIMEOUT_SECONDS": "upstream_timeout_seconds",
}


class DatabaseCredentials(BaseModel):
    """A tool's own database login: the JSON of its Secrets Manager secret (RDS shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host: str
    port: int = 5432
    dbname: str = "lockgate"
    username: str
    password: SecretStr
    ssl: bool = Field(default=True, description="Encrypt the connection (RDS requires it).")


class ToolSettings(BaseModel):
    """Where a tool finds its own database credentials and upstream.

    In Lambda: `LOCKGATE_DB_SECRET_ID` names the tool's own Secrets Manager secret. The local
    stack passes the credentials of the tool's own role directly (`database`). Tools that call
    an HTTP API read its base URL from `LOCKGATE_UPSTREAM_URL`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_secret_id: str | None = None
    database: DatabaseCredentials | None = None
    secret_max_age_seconds: int = 300
    connect_timeout_seconds: int = 5
    upstream_url: str | None = None
    upstream_timeout_seconds: float = 3.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ToolSettings:
        """Read the Lambda environment."""
        return cls.model_validate(from_variables(_ENVIRONMENT, environ))


def from_variables(variables: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The fields named by `variables` (environment variable -> field) that `environ` sets,
    for a settings model to validate."""
    return {field: environ[name] for name, field in variables.items() if environ.get(name)}
