"""Deployment asset size per function: what each Lambda function loads, code plus layers.

The app is synthesized with its real, Docker-free bundling (cached in `.lockgate/bundles`),
and each function's code asset and layers are measured unzipped (what the 250 MB Lambda limit
and cold-start loading see) and zipped (what is uploaded). Sizes do not vary between runs, so
there is nothing to repeat; the baseline is the *core* layer (pydantic and Powertools), which
every function carries. Targets: tools under 15 MB unzipped, orchestrator functions under
20 MB; boto3 is never shipped (the runtime provides it).

    python -m bench.asset_size
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench._common import table, verdict, write_results
from infra.assets import (
    MB,
    SESSION_FUNCTION_MAX_BYTES,
    TOOL_MAX_BYTES,
    FunctionAssets,
    function_assets,
    tree_size,
    zipped_size,
)

ROOT = Path(__file__).resolve().parent.parent


def synthesize(outdir: Path) -> list[FunctionAssets]:
    """`cdk synth` of the app as configured in cdk.json, without the checks (sizes only)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from infra.config import LockgateConfig
    from infra.wiring import build

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context=context, outdir=str(outdir), builtin_cloud_formation_validation=False)
    build(app, LockgateConfig.model_validate(context["lockgate"]))
    app.synth()
    return function_assets(outdir)


def target(function: FunctionAssets) -> int | None:
    """The size a function must stay under, if the targets name its kind."""
    if function.is_tool:
        return TOOL_MAX_BYTES
    if function.handler.startswith("orchestrator."):
        return SESSION_FUNCTION_MAX_BYTES
    return None


def measure(functions: list[FunctionAssets]) -> dict[str, Any]:
    """Per function: code, layers, total unzipped and zipped, against the core layer."""
    # Each asset directory measured once: functions share their layers.
    parts = {p for f in functions for p in (f.code, *f.layers)}
    unzipped = {p: tree_size(p) for p in parts}
    zipped = {p: zipped_size(p) for p in parts}
    # The layer every function has: the smallest one all of them share.
    core_bytes = min(unzipped[p] for p in set.intersection(*(set(f.layers) for f in functions)))
    rows = []
    for function in sorted(functions, key=lambda f: (f.stack, f.handler)):
        layers = sum(unzipped[p] for p in function.layers)
        total = unzipped[function.code] + layers
        limit = target(function)
        rows.append(
            {
                "function": f"{function.stack}:{function.handler}",
                "code_bytes": unzipped[function.code],
                "layers_bytes": layers,
                "unzipped_bytes": total,
                "zipped_bytes": zipped[function.code] + sum(zipped[p] for p in function.layers),
                "vs_core_layer": total / core_bytes,
                "target_bytes": limit,
                "meets_target": None if limit is None else total < limit,
            }
        )
    return {"core_layer_bytes": core_bytes, "functions": rows}


def report(result: dict[str, Any]) -> str:
    """The results table."""

    def mb(n: int) -> str:
        return f"{n / MB:.2f}"

    return table(
        ["function", "code MB", "layers MB", "unzipped MB", "zipped MB", "vs core", "target", ""],
        [
            [
                r["function"],
                mb(r["code_bytes"]),
                mb(r["layers_bytes"]),
                mb(r["unzipped_bytes"]),
                mb(r["zipped_bytes"]),
                f"{r['vs_core_layer']:.2f}x",
                "" if r["target_bytes"] is None else f"< {r['target_bytes'] // MB} MB",
                "" if r["meets_target"] is None else verdict(r["meets_target"]),
            ]
            for r in result["functions"]
        ],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Synthesize, measure, print, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lockgate-cdk-out-") as outdir:
        result = measure(synthesize(Path(outdir)))
        print(f"asset size per function (core layer: {result['core_layer_bytes'] / MB:.2f} MB)\n")
        print(report(result))
    print(f"\nresults: {write_results('asset_size', result)}")
    return result


if __name__ == "__main__":
    main()
