"""What the sessions API accepts on the wire, checked before any route runs.

API Gateway hands the function bodies as text or base64, any content type, any JSON. Every
malformed input gets a clear 4xx here (never an unhandled exception, which Lambda would turn
into a 502), and the same body the gateway's model would reject is rejected locally too:
- a body of a method that takes one must be `application/json` (415 otherwise);
- base64 must decode, and the bytes must be UTF-8 (400);
- JSON must be standard JSON: no `NaN`/`Infinity`, no duplicate keys, at most `MAX_DEPTH`
  levels of nesting and `MAX_BODY_BYTES` bytes (400 / 413).
The event is passed on with its body decoded to text, so the routes see one form.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_BODY_BYTES = 65_536
MAX_DEPTH = 32
_WITH_BODY = {"POST", "PUT", "PATCH"}
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
# RFC 7240: preference = token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )
_PREFERENCE = re.compile(r'^\s*([!#$%&\'*+.^_`|~\w-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?')


class BadRequest(Exception):
    """A request no route should see: the status and what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> dict[str, Any]:
        """The API Gateway proxy response for it."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": self.message}),
            "isBase64Encoded": False,
        }


def header_values(event: Mapping[str, Any], name: str) -> list[str]:
    """Every value of a header, from both header maps, names compared case-insensitively."""
    wanted, values = name.lower(), list[str]()
    for key, value in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and isinstance(value, Sequence) and not isinstance(value, str):
            values.extend(str(v) for v in value)
    if not values:
        for key, value in (event.get("headers") or {}).items():
            if key.lower() == wanted and value is not None:
                values.append(str(value))
    return values


def prefer_wait(event: Mapping[str, Any]) -> float:
    """Seconds of `Prefer: wait=N` (RFC 7240), 0 when absent or not a number."""
    for header in header_values(event, "Prefer"):
        for item in header.split(","):
            match = _PREFERENCE.match(item)
            if match and match.group(1).lower() == "wait" and match.group(2) is not None:
                value = match.group(2).strip('"')
                if value.isdigit():
                    return float(value)
    return 0.0


def _reject_constant(name: str) -> Any:
    raise BadRequest(400, f"the body is not standard JSON: {name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BadRequest(400, f"the body repeats the key {key!r}")
        seen[key] = value
    return seen


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (counted before parsing, so that a
    deeply nested body never reaches the recursive parser)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str) -> Any:
    """Standard JSON only; BadRequest says what is wrong."""
    if _depth(text) > MAX_DEPTH:
        raise BadRequest(400, f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not valid JSON: {exc.msg} at {exc.pos}") from None


def _body_text(event: Mapping[str, Any]) -> str | None:
    body = event.get("body")
    if body is None or body == "":
        return None
    if not isinstance(body, str):
        raise BadRequest(400, "the body is not text")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(400, "the body is marked base64 but is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(400, "the body is not valid UTF-8") from None
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not valid UTF-8") from None


def checked_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its body decoded and checked; BadRequest otherwise."""
    text = _body_text(event)
    method = str(event.get("httpMethod", "")).upper()
    checked = dict(event)
    checked["isBase64Encoded"] = False
    if text is None or method not in _WITH_BODY:  # as API Gateway, a GET's body is ignored
        checked["body"] = None
        return checked
    types = header_values(event, "Content-Type")
    media = types[0].split(";")[0].strip().lower() if types else ""
    if not _JSON_TYPE.match(media):
        raise BadRequest(
            415, f"send the body as application/json (got {media or 'no content type'})"
        )
    parse_json(text)  # what the routes parse again is then plain, standard JSON
    checked["body"] = text
    return checked
