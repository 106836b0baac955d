"""A tool's configuration, read once from its Lambda environment."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ToolSettings(BaseSettings):
    """Where a tool finds its own database credentials.

    In Lambda: `LOCKGATE_DB_SECRET_ID` names the tool's own Secrets Manager secret
    (RDS JSON shape: host, port, dbname, username, password). Outside AWS a tool may be given
    a connection string for its own role instead (`LOCKGATE_TOOL_DB_DSN`). Tools that call an
    HTTP API read its base URL from `LOCKGATE_UPSTREAM_URL`.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    db_secret_id: str | None = None
    db_dsn: SecretStr | None = None
    secret_max_age_seconds: int = 300
    connect_timeout_seconds: int = 5
    upstream_url: str | None = None
    upstream_timeout_seconds: float = 3.0

    @classmethod
    def from_env(cls) -> ToolSettings:
        """Read the Lambda environment (variables prefixed `LOCKGATE_`, `TOOL_DB_DSN` for the DSN)."""
        return _EnvToolSettings().as_settings()


class _EnvToolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKGATE_", extra="ignore")

    db_secret_id: str | None = None
    tool_db_dsn: SecretStr | None = None
    upstream_url: str | None = None
    upstream_timeout_seconds: float = 3.0

    def as_settings(self) -> ToolSettings:
        return ToolSettings(
            db_secret_id=self.db_secret_id,
            db_dsn=self.tool_db_dsn,
            upstream_url=self.upstream_url,
            upstream_timeout_seconds=self.upstream_timeout_seconds,
        )
