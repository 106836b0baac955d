"""What a synthesized app ships per function: its code asset and its layers, and their sizes.

Read from a cloud assembly directory (`cdk synth`'s output), so the sizes are those of the
assets CloudFormation would upload. Used by the synth tests and by `bench/asset_size.py`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024
# Unzipped, code plus layers: what a function loads. boto3 is never shipped (the runtime has it).
TOOL_MAX_BYTES = 15 * MB
SESSION_FUNCTION_MAX_BYTES = 20 * MB
# The worker's model-provider SDK layers together (OpenAI's and Anthropic's SDKs and their HTTP
# stack), on top of the above; present only for the providers the configured models use.
PROVIDER_LAYERS_MAX_BYTES = 25 * MB


@dataclass(frozen=True)
class FunctionAssets:
    """One function's code asset and layer directories."""

    stack: str
    handler: str
    code: Path
    layers: tuple[Path, ...]

    @property
    def is_tool(self) -> bool:
        """A tool's function (as opposed to the orchestrator's and the migrations')."""
        return self.handler.startswith("tools.")

    @property
    def size(self) -> int:
        """Bytes unzipped, code and layers."""
        return sum(tree_size(d) for d in (self.code, *self.layers))


def templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Stack name → its synthesized template."""
    return {
        p.name.removesuffix(".template.json"): json.loads(p.read_text())
        for p in outdir.glob("*.template.json")
    }


def function_assets(outdir: Path) -> list[FunctionAssets]:
    """Every Lambda function of the app, with the asset directories it is made of."""
    found = []
    for stack, template in templates(outdir).items():
        resources = template["Resources"]
        for function in resources.values():
            if function["Type"] != "AWS::Lambda::Function":
                continue
            properties = function["Properties"]
            layers = tuple(
                _asset(outdir, resources[layer["Ref"]]["Properties"]["Content"])
                for layer in properties.get("Layers", [])
            )
            found.append(
                FunctionAssets(
                    stack, properties["Handler"], _asset(outdir, properties["Code"]), layers
                )
            )
    return found


def _asset(outdir: Path, location: dict[str, Any]) -> Path:
    return outdir / f"asset.{location['S3Key'].removesuffix('.zip')}"


def tree_size(directory: Path) -> int:
    """Bytes of every file under `directory`."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def zipped_size(directory: Path) -> int:
    """Bytes of `directory` as a deflated zip, as it is uploaded."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()
