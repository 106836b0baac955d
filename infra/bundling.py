"""Docker-free Lambda assets: copy only the code a function needs, pip-install its wheels.

`cdk synth` must work without a Docker engine, so every asset is built by `LocalBundling`
(CDK's `ILocalBundling`): sources are copied by glob, and third-party packages are installed
with pip as manylinux wheels for the Lambda runtime (`--platform ... --only-binary=:all:`),
pinned to the versions in `uv.lock`. The pip output is cached under `.lockgate/bundles/`,
keyed by a hash of the pinned requirement list, so repeated synths do not reinstall.

Each asset's hash is computed here from what goes into it (file contents, pins, recipe), so
CDK never fingerprints the repository and skips bundling when nothing changed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".lockgate" / "bundles"
_RECIPE = "lockgate-bundle-v1"  # bump to invalidate every cached asset

# The Lambda runtime ships boto3 and botocore; an asset never carries them.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})

# What each function needs at runtime (versions come from uv.lock).
CORE_PACKAGES: tuple[str, ...] = (
    "annotated-types",
    "aws-lambda-powertools",
    "jmespath",
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "typing-inspection",
)
# Tools talk to PostgreSQL through pg8000 (pure Python, small); the migration function uses
# psycopg (its SQL composition), whose binary wheel bundles libpq and OpenSSL (≈ 14 MB).
TOOL_POSTGRES_PACKAGES: tuple[str, ...] = (
    "pg8000",
    "python-dateutil",
    "scramp",
    "asn1crypto",
    "six",
)
POSTGRES_PACKAGES: tuple[str, ...] = ("psycopg", "psycopg-binary")
ORCHESTRATOR_PACKAGES: tuple[str, ...] = ("tenacity",)
# Verifying Cognito tokens on the WebSocket: PyJWT with its RSA backend. Native code of
# several MB that changes rarely, so a layer, given only to the WebSocket functions.
AUTH_PACKAGES: tuple[str, ...] = ("cffi", "cryptography", "pycparser", "pyjwt")
# numpy for python_exec's programs (the `numeric` extra), a layer for that tool only, and only
# when `cdk.json` `python_exec.numeric` is on.
NUMERIC_PACKAGES: tuple[str, ...] = ("numpy",)

# Model providers besides Bedrock (`openai:` / `anthropic:` specs in the configuration): the
# HTTP stack both SDKs share in one layer, each SDK in its own. Only the worker gets them, and
# only for the providers its models use.
PROVIDER_HTTP_PACKAGES: tuple[str, ...] = (
    "anyio",
    "h11",
    "httpcore2",
    "httpx2",
    "idna",
    "jiter",
    "sniffio",
    "truststore",
)
PROVIDER_PACKAGES: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic", "docstring-parser", "opentelemetry-api"),
}

# Contracts only: what the orchestrator and the migrations read. No handler, no driver.
CONTRACT_SOURCES: tuple[str, ...] = (
    "tools/__init__.py",
    "tools/registry.py",
    "tools/*/__init__.py",
    "tools/*/contract.py",
    "tools/kit/envelope.py",
    "tools/kit/redact.py",
    "tools/kit/settings.py",
    "tools/kit/validation.py",
)
ORCHESTRATOR_SOURCES: tuple[str, ...] = ("orchestrator/**/*.py", *CONTRACT_SOURCES)
MIGRATION_SOURCES: tuple[str, ...] = (
    "db/**/*.py",
    "db/migrations/*.sql",
    "db/seed/*.sql",
    *CONTRACT_SOURCES,
)


def tool_sources(name: str) -> tuple[str, ...]:
    """A tool's asset: its own folder and the kit, never another tool."""
    return ("tools/__init__.py", "tools/kit/*.py", f"tools/{name}/**/*.py")


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class LambdaPlatform:
    """The Lambda runtime the wheels are chosen for."""

    runtime: lambda_.Runtime
    architecture: lambda_.Architecture

    @property
    def python_version(self) -> str:
        """`3.14` for `python3.14`."""
        return self.runtime.name.removeprefix("python")

    @property
    def marker_environment(self) -> dict[str, str]:
        """What a dependency marker sees on this runtime (for uv.lock's resolution markers)."""
        machine = "aarch64" if self.architecture.name == "arm64" else "x86_64"
        return {
            "python_version": self.python_version,
            "python_full_version": f"{self.python_version}.0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": machine,
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
        }

    @property
    def pip_platforms(self) -> tuple[str, ...]:
        """manylinux tags the runtime's glibc (Amazon Linux 2023: 2.34) can load."""
        machine = "aarch64" if self.architecture.name == "arm64" else "x86_64"
        return tuple(
            f"{tag}_{machine}" for tag in ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
        )


@dataclass(frozen=True)
class Bundler:
    """Builds Lambda code and layers from this repository without Docker."""

    platform: LambdaPlatform
    root: Path = ROOT
    cache: Path = CACHE
    lock_file: Path = field(default=ROOT / "uv.lock")

    @cached_property
    def _locked(self) -> dict[str, str]:
        """Package → version, for the runtime's Python: where uv locked a package at several
        versions (one per Python range), the one whose resolution markers admit the runtime."""
        lock = tomllib.loads(self.lock_file.read_text())
        environment = self.platform.marker_environment
        versions: dict[str, list[str]] = {}
        for package in lock["package"]:
            if "version" not in package:
                continue
            markers = package.get("resolution-markers", [])
            if markers and not any(Marker(m).evaluate(environment) for m in markers):
                continue
            versions.setdefault(_normalize(package["name"]), []).append(str(package["version"]))
        ambiguous = sorted(name for name, found in versions.items() if len(found) > 1)
        if ambiguous:
            raise ValueError(f"{self.lock_file.name} has several versions of {ambiguous}")
        return {name: found[0] for name, found in versions.items()}

    def pins(self, packages: Iterable[str]) -> tuple[str, ...]:
        """`name==version` for each package, versions taken from uv.lock."""
        pins = []
        for name in sorted({_normalize(p) for p in packages}):
            if name in RUNTIME_PROVIDED:
                raise ValueError(f"{name} is provided by the Lambda runtime; do not bundle it")
            if name not in self._locked:
                raise ValueError(f"{name} is not in {self.lock_file.name}")
            pins.append(f"{name}=={self._locked[name]}")
        return tuple(pins)

    def sources(self, patterns: Sequence[str]) -> tuple[Path, ...]:
        """Repository files matching the globs (relative paths, sorted, no caches)."""
        found: set[Path] = set()
        for pattern in patterns:
            matches = [p for p in self.root.glob(pattern) if p.is_file()]
            if not matches:
                raise FileNotFoundError(f"no file matches {pattern!r} under {self.root}")
            found.update(p.relative_to(self.root) for p in matches if "__pycache__" not in p.parts)
        return tuple(sorted(found))

    def function_code(self, sources: Sequence[str], packages: Sequence[str] = ()) -> lambda_.Code:
        """Function code: the matched sources at the asset root, plus pinned packages."""
        files = self.sources(sources)
        pins = self.pins(packages) if packages else ()
        return self._code(_Recipe(self, files=files, pins=pins, prefix=""))

    def layer_code(self, packages: Sequence[str]) -> lambda_.Code:
        """Layer content: pinned packages under `python/` (on the runtime's sys.path)."""
        return self._code(_Recipe(self, files=(), pins=self.pins(packages), prefix="python"))

    def _code(self, recipe: _Recipe) -> lambda_.Code:
        return lambda_.Code.from_asset(
            str(self.root),
            asset_hash=recipe.digest,
            asset_hash_type=AssetHashType.CUSTOM,
            bundling=BundlingOptions(
                # Never pulled: LocalBundling always succeeds or raises.
                image=DockerImage.from_registry("lockgate/local-bundling-only"),
                local=LocalBundling(recipe),
            ),
        )

    def installed(self, pins: tuple[str, ...]) -> Path:
        """A cached directory holding exactly these pinned wheels, installed once."""
        key = hashlib.sha256(
            "\n".join(
                (_RECIPE, self.platform.python_version, *self.platform.pip_platforms, *pins)
            ).encode()
        ).hexdigest()[:24]
        target = self.cache / f"pip-{key}"
        if target.is_dir():
            return target
        self.cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".pip-{key}-", dir=self.cache))
        command = [
            *_pip(),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",  # the pin list is the closure (tests check it against uv.lock)
            "--no-compile",
            "--only-binary=:all:",
            "--implementation=cp",
            f"--python-version={self.platform.python_version}",
            *(f"--platform={p}" for p in self.platform.pip_platforms),
            f"--target={staging}",
            *pins,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"pip failed ({result.returncode}):\n{result.stderr}")
        _prune(staging)
        try:
            staging.rename(target)
        except OSError:  # another synth finished the same install first
            shutil.rmtree(staging, ignore_errors=True)
        return target


@dataclass(frozen=True)
class _Recipe:
    bundler: Bundler
    files: tuple[Path, ...]
    pins: tuple[str, ...]
    prefix: str

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (_RECIPE, self.prefix, self.bundler.platform.python_version, *self.pins):
            h.update(part.encode() + b"\0")
        for path in self.files:
            h.update(path.as_posix().encode() + b"\0")
            h.update(hashlib.sha256((self.bundler.root / path).read_bytes()).digest())
        return h.hexdigest()

    def build(self, output: Path) -> None:
        target = output / self.prefix if self.prefix else output
        target.mkdir(parents=True, exist_ok=True)
        if self.pins:
            _link_tree(self.bundler.installed(self.pins), target)
        for path in self.files:
            destination = target / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.bundler.root / path, destination)


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK calls this instead of Docker; it builds the asset on this machine."""

    def __init__(self, recipe: _Recipe) -> None:
        self._recipe = recipe

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        """Build the asset into `output_dir`; never falls back to Docker."""
        self._recipe.build(Path(output_dir))
        return True


def _pip() -> list[str]:
    """A pip that can install for another platform: this interpreter's, else python3's."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for candidate in ("python3", "python"):
        executable = shutil.which(candidate)
        if (
            executable
            and subprocess.run(  # noqa: S603
                [executable, "-m", "pip", "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return [executable, "-m", "pip"]
    raise RuntimeError("bundling needs pip: install it in the environment that runs `cdk synth`")


def _prune(directory: Path) -> None:
    """Drop what Lambda never loads: bytecode caches and console scripts."""
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(directory / "bin", ignore_errors=True)


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link a cached tree into the asset (copy across filesystems)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link, dirs_exist_ok=True)
