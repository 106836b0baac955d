"""The README's HTTP examples work as written: a request with a body says it is JSON (curl's
`-d` alone sends `application/x-www-form-urlencoded`, which the API does not accept)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from infra.config import ModelsConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_commands() -> list[list[str]]:
    """Every `curl` command in the README's bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("  #", 1)[0].strip()
            if code.startswith("curl "):
                commands.append(shlex.split(code.replace("$TOKEN", "token")))
    return commands


def headers(args: list[str]) -> dict[str, str]:
    pairs = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("-H", "--header")]
    return {name.strip().lower(): value.strip() for name, value in (p.split(":", 1) for p in pairs)}


def test_every_curl_example_with_a_body_sends_json() -> None:
    with_body = [args for args in curl_commands() if {"-d", "--data"} & set(args)]
    assert with_body, "the README shows how to create a session"
    for args in with_body:
        assert headers(args).get("content-type") == "application/json", args


def test_the_cloud_model_providers_example_is_a_configuration_cdk_accepts() -> None:
    (snippet,) = re.findall(r"```json\n(\"models\": .*?)\n```", README.read_text(), flags=re.DOTALL)
    models = ModelsConfig.model_validate(json.loads(f"{{{snippet}}}")["models"])
    assert models.providers == ("openai", "anthropic")
