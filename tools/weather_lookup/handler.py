"""weather_lookup Lambda: one GET to the configured weather API, failures mapped to kinds.

Throttling (429, with its Retry-After), gateway errors (502/503/504), 500s and timeouts are
`transient`, so the orchestrator retries them with backoff; anything else is a permanent error.
"""

from __future__ import annotations

import email.utils
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from tools.kit.envelope import ErrorKind, ToolError
from tools.kit.handler import ToolContext, tool_handler
from tools.weather_lookup.contract import SPEC, Input, Output

_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    parsed = email.utils.parsedate_to_datetime(value)
    return max(0.0, parsed.timestamp() - time.time())


def forecast(ctx: ToolContext, data: Input) -> Output | ToolError:
    """Ask the upstream for the forecast."""
    base = ctx.settings.upstream_url
    if not base:
        return ToolError(kind=ErrorKind.INTERNAL, message="the weather service is not configured")
    query = urllib.parse.urlencode({"airport": data.airport, "date": data.date.isoformat()})
    url = f"{base.rstrip('/')}/forecast?{query}"
    if not url.startswith(("http://", "https://")):
        return ToolError(kind=ErrorKind.INTERNAL, message="the weather service URL is invalid")
    try:
        with urllib.request.urlopen(url, timeout=ctx.settings.upstream_timeout_seconds) as response:  # noqa: S310  # scheme checked above
            # Strict JSON: text that is not valid Unicode (a lone surrogate) is malformed too.
            body: Any = from_json(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code in _TRANSIENT_STATUS:
            details: dict[str, Any] = {"upstream_status": exc.code}
            retry_after = _retry_after(exc.headers.get("Retry-After"))
            if retry_after is not None:
                details["retry_after_seconds"] = retry_after
            return ToolError(
                kind=ErrorKind.TRANSIENT,
                message="the weather service is busy; retry",
                details=details,
            )
        if exc.code == 404:
            return ToolError(
                kind=ErrorKind.NOT_FOUND, message=f"no forecast for {data.airport} on {data.date}"
            )
        return ToolError(
            kind=ErrorKind.INTERNAL, message=f"the weather service refused ({exc.code})"
        )
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return ToolError(
            kind=ErrorKind.TRANSIENT, message="the weather service did not answer; retry"
        )
    except ValueError:
        return ToolError(
            kind=ErrorKind.INTERNAL, message="the weather service sent a malformed answer"
        )
    try:
        return Output(
            airport=data.airport,
            date=data.date,
            temperature_c=body["temperature_c"],
            conditions=body["conditions"],
        )
    except (KeyError, TypeError, ValidationError):
        return ToolError(
            kind=ErrorKind.INTERNAL, message="the weather service sent a malformed answer"
        )


handler = tool_handler(SPEC, forecast)
