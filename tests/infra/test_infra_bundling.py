"""What goes into each asset, decided without building anything."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import (
    AUTH_PACKAGES,
    CORE_PACKAGES,
    MIGRATION_SOURCES,
    NUMERIC_PACKAGES,
    ORCHESTRATOR_PACKAGES,
    ORCHESTRATOR_SOURCES,
    POSTGRES_PACKAGES,
    PROVIDER_HTTP_PACKAGES,
    PROVIDER_PACKAGES,
    RUNTIME_PROVIDED,
    Bundler,
    tool_sources,
)
from infra.wiring import PLATFORM
from tools.registry import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
TARGET = {
    "python_version": PLATFORM.python_version,
    "python_full_version": f"{PLATFORM.python_version}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
}


def _closure(roots: tuple[str, ...]) -> set[str]:
    """Every package uv.lock says the roots (`name` or `name[extra]`) need on the Lambda
    runtime, minus what it ships."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {canonicalize_name(p["name"]): p for p in lock["package"]}
    seen: set[str] = set()
    stack = [canonicalize_name(r.split("[")[0]) for r in roots]
    extras = {
        canonicalize_name(r.split("[")[0]): r.split("[")[1].rstrip("]") for r in roots if "[" in r
    }
    while stack:
        name = stack.pop()
        if name in seen or name in RUNTIME_PROVIDED:
            continue
        seen.add(name)
        package = packages[name]
        deps = list(package.get("dependencies", []))
        if name in extras:
            deps += package["optional-dependencies"][extras[name]]
        for dep in deps:
            marker = dep.get("marker")
            if marker is None or Marker(marker).evaluate(TARGET):
                stack.append(canonicalize_name(dep["name"]))
    return seen


def test_pinned_package_lists_are_closed_under_the_lock() -> None:
    assert set(CORE_PACKAGES) == _closure(("aws-lambda-powertools", "pydantic"))
    assert set(POSTGRES_PACKAGES) == _closure(("psycopg[binary]",)) - set(CORE_PACKAGES)
    assert set(ORCHESTRATOR_PACKAGES) == _closure(("tenacity",)) - set(CORE_PACKAGES)
    assert set(AUTH_PACKAGES) == _closure(("pyjwt[crypto]",)) - set(CORE_PACKAGES)
    assert set(NUMERIC_PACKAGES) == _closure(("numpy",))
    # The providers' shared HTTP layer holds what every SDK needs; each SDK layer the rest.
    sdks = {p: _closure((p,)) - set(CORE_PACKAGES) for p in PROVIDER_PACKAGES}
    assert set(PROVIDER_HTTP_PACKAGES) == set.intersection(*sdks.values())
    for provider, packages in PROVIDER_PACKAGES.items():
        assert set(packages) == sdks[provider] - set(PROVIDER_HTTP_PACKAGES), provider


def test_the_numeric_layer_pins_what_the_extra_declares_for_the_runtime() -> None:
    # numpy is locked at two versions, one per Python range: the layer gets the runtime's.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["optional-dependencies"]["numeric"]]
    (runtime,) = [
        r for r in declared if r.marker is None or r.marker.evaluate({**TARGET, "extra": "numeric"})
    ]
    assert Bundler(PLATFORM).pins(NUMERIC_PACKAGES) == (f"{runtime.name}{runtime.specifier}",)
    assert PLATFORM.marker_environment == TARGET


def test_pins_come_from_the_lock_and_never_include_boto() -> None:
    bundler = Bundler(PLATFORM)
    pins = bundler.pins(
        CORE_PACKAGES
        + POSTGRES_PACKAGES
        + ORCHESTRATOR_PACKAGES
        + AUTH_PACKAGES
        + PROVIDER_HTTP_PACKAGES
        + tuple(p for packages in PROVIDER_PACKAGES.values() for p in packages)
    )
    assert all("==" in p for p in pins)
    assert not any(p.split("==")[0] in RUNTIME_PROVIDED for p in pins)
    for name in ("boto3", "botocore"):
        try:
            bundler.pins((name,))
        except ValueError:
            continue
        raise AssertionError(f"{name} must be refused")


def test_a_tool_asset_holds_its_own_folder_and_the_kit_only() -> None:
    bundler = Bundler(PLATFORM)
    for spec in CONTRACTS:
        files = {p.as_posix() for p in bundler.sources(tool_sources(spec.name))}
        assert f"tools/{spec.name}/handler.py" in files
        assert "tools/kit/handler.py" in files
        others = {s.name for s in CONTRACTS} - {spec.name}
        assert not any(f.split("/")[1] in others for f in files if f.count("/") >= 2)
        assert not any(
            f.startswith(("orchestrator/", "db/")) or f == "tools/registry.py" for f in files
        )


def test_orchestrator_asset_holds_contracts_not_handlers() -> None:
    files = {p.as_posix() for p in Bundler(PLATFORM).sources(ORCHESTRATOR_SOURCES)}
    assert "orchestrator/handlers/api.py" in files
    assert "orchestrator/settings.py" in files
    for spec in CONTRACTS:
        assert f"tools/{spec.name}/contract.py" in files
        assert f"tools/{spec.name}/handler.py" not in files
    assert "tools/kit/handler.py" not in files
    assert "tools/kit/db.py" not in files
    assert not any(f.startswith("db/") for f in files)


def test_migration_asset_holds_the_sql_and_contracts() -> None:
    files = {p.as_posix() for p in Bundler(PLATFORM).sources(MIGRATION_SOURCES)}
    assert {"db/handler.py", "db/migrate.py", "tools/registry.py"} <= files
    assert any(f.startswith("db/migrations/") and f.endswith(".sql") for f in files)
    assert not any(f.endswith("/handler.py") and f.startswith("tools/") for f in files)
