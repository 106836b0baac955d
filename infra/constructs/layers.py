"""Lambda layers from Docker-free bundled assets, for one runtime and architecture."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import aws_lambda as lambda_
from constructs import Construct


def layer_versions(
    scope: Construct,
    prefix: str,
    layers: Sequence[Callable[[], lambda_.Code]],
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
) -> list[lambda_.ILayerVersion]:
    """One `LayerVersion` per asset, ids `<prefix>0`, `<prefix>1`, ... (a layer version belongs
    to one stack, so each stack builds its own from the same asset)."""
    return [
        lambda_.LayerVersion(
            scope,
            f"{prefix}{index}",
            code=layer_code(),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
        )
        for index, layer_code in enumerate(layers)
    ]
