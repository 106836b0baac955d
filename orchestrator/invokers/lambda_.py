"""Invoke each tool's own Lambda function synchronously through boto3."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic_core import from_json

from orchestrator.invokers.responses import failure, observation_from_response
from orchestrator.types import ErrorKind, Observation

_THROTTLED = {"TooManyRequestsException", "EC2ThrottledException", "ResourceNotReadyException"}
_TOO_LARGE = {"RequestTooLargeException"}


class LambdaInvoker:
    """Cloud adapter: `lambda:InvokeFunction` with RequestResponse, errors mapped to kinds."""

    def __init__(self, functions: Mapping[str, str], client: Any = None) -> None:
        self._functions = dict(functions)
        if client is None:
            import boto3
            from botocore.config import Config

            # One attempt here: the orchestrator retries transient failures with its own policy.
            client = boto3.client("lambda", config=Config(retries={"total_max_attempts": 1}))
        self._client = client

    def invoke(self, tool: str, envelope: Mapping[str, Any]) -> Observation:
        """Invoke the tool's function and read its response envelope."""
        function = self._functions.get(tool)
        if function is None:
            return failure(ErrorKind.INTERNAL, f"tool {tool} is not deployed")
        try:
            response = self._client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(envelope).encode(),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _THROTTLED:
                return failure(ErrorKind.TRANSIENT, f"tool {tool} is throttled; retry later")
            if code in _TOO_LARGE:
                return failure(ErrorKind.VALIDATION, "arguments too large for the tool")
            return failure(ErrorKind.INTERNAL, f"tool {tool} could not be invoked ({code})")
        except BotoCoreError:
            return failure(ErrorKind.TRANSIENT, f"tool {tool} could not be reached; retry later")
        raw = response["Payload"].read()
        if response.get("FunctionError"):
            timed_out = b"Task timed out" in raw
            kind = ErrorKind.TRANSIENT if timed_out else ErrorKind.INTERNAL
            return failure(kind, f"tool {tool} {'timed out' if timed_out else 'crashed'}")
        try:
            # pydantic-core's parser also refuses lone surrogates ("\ud800"), which no
            # checkpoint or prompt could be written with.
            payload = from_json(raw)
        except ValueError:
            return failure(ErrorKind.INTERNAL, "the tool returned a malformed response")
        return observation_from_response(payload)
