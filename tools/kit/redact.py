"""Secret values never reach a log: botocore writes every response body at DEBUG, and a
Secrets Manager response body holds the secret."""

from __future__ import annotations

import logging


class NoSecretValues(logging.Filter):
    """Drops a log record whose arguments carry a Secrets Manager response body."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(
            isinstance(arg, bytes) and (b'"SecretString"' in arg or b'"SecretBinary"' in arg)
            for arg in args
        )


_FILTER = NoSecretValues()


def hide_secret_values() -> None:
    """Install the filter on botocore's response parser log (idempotent)."""
    logger = logging.getLogger("botocore.parsers")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
