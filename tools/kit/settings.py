"""A tool's configuration, read once from its Lambda environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, SecretStr

# Environment variable → field. A plain mapping keeps pydantic-settings out of every tool's
# cold start; the values are still validated by the model.
_ENVIRONMENT = {
    "LOCKGATE_DB_SECRET_ID": "db_secret_id",
    "LOCKGATE_TOOL_DB_DSN": "db_dsn",
    "LOCKGATE_UPSTREAM_URL": "upstream_url",
    "LOCKGATE_UPSTREAM_TIMEOUT_SECONDS": "upstream_timeout_seconds",
}


class ToolSettings(BaseModel):
    """Where a tool finds its own database credentials and upstream.

    In Lambda: `LOCKGATE_DB_SECRET_ID` names the tool's own Secrets Manager secret
    (RDS JSON shape: host, port, dbname, username, password). Outside AWS a tool may be given
    a connection string for its own role instead (`LOCKGATE_TOOL_DB_DSN`). Tools that call an
    HTTP API read its base URL from `LOCKGATE_UPSTREAM_URL`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_secret_id: str | None = None
    db_dsn: SecretStr | None = None
    secret_max_age_seconds: int = 300
    connect_timeout_seconds: int = 5
    upstream_url: str | None = None
    upstream_timeout_seconds: float = 3.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ToolSettings:
        """Read the Lambda environment."""
        return cls.model_validate(
            {field: environ[name] for name, field in _ENVIRONMENT.items() if environ.get(name)}
        )
