"""The one full synth: local bundling, CDK's template validation, cdk-nag, then cfn-lint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from aws_cdk import App, Validations
from conftest import cdk_context, default_config, provider_config

from infra.assets import (
    MB,
    PROVIDER_LAYERS_MAX_BYTES,
    SESSION_FUNCTION_MAX_BYTES,
    TOOL_MAX_BYTES,
    function_assets,
    templates,
    tree_size,
)
from infra.bundling import (
    AUTH_PACKAGES,
    CORE_PACKAGES,
    ORCHESTRATOR_PACKAGES,
    POSTGRES_PACKAGES,
    PROVIDER_HTTP_PACKAGES,
    PROVIDER_PACKAGES,
    TOOL_POSTGRES_PACKAGES,
)
from infra.config import LockgateConfig
from infra.stacks.api import (
    API_HANDLER,
    DEAD_LETTER_HANDLER,
    WEBSOCKET_AUTHORIZER,
    WEBSOCKET_HANDLER,
    WORKER_HANDLER,
)
from infra.wiring import add_checks, build
from tools.registry import CONTRACTS, handler_module

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STACKS = {
    f"{cdk_context()['lockgate'].get('stack_prefix', 'Lockgate')}{name}"
    for name in ("Data", "Tools", "Sessions", "Api", "Observability")
}
# Every function's entry point, and the third-party packages it must find in its asset and
# layers (the Lambda runtime adds only boto3 and its dependencies).
ORCHESTRATOR = (*CORE_PACKAGES, *ORCHESTRATOR_PACKAGES)
HANDLERS: dict[str, tuple[str, ...]] = {
    "db.handler.handler": (*CORE_PACKAGES, *POSTGRES_PACKAGES),
    # Only a tool that uses PostgreSQL gets the driver.
    **{
        f"{handler_module(s.name)}.handler": (
            (*CORE_PACKAGES, *TOOL_POSTGRES_PACKAGES) if s.needs_database else CORE_PACKAGES
        )
        for s in CONTRACTS
    },
    API_HANDLER: ORCHESTRATOR,
    WORKER_HANDLER: ORCHESTRATOR,
    DEAD_LETTER_HANDLER: ORCHESTRATOR,
    WEBSOCKET_HANDLER: ORCHESTRATOR,
    WEBSOCKET_AUTHORIZER: (*ORCHESTRATOR, *AUTH_PACKAGES),
}
PROVIDER_SDKS = {*PROVIDER_HTTP_PACKAGES, *(p for ps in PROVIDER_PACKAGES.values() for p in ps)}
# The two configurations synthesized: cdk.json's, and the same with `openai:` and `anthropic:`
# models (their SDK layers and key secrets).
CONFIGS = {"default": default_config, "providers": provider_config}


def handler_needs(config: LockgateConfig) -> dict[str, tuple[str, ...]]:
    """HANDLERS, the worker also needing the SDKs of the providers its models use."""
    providers = config.models.providers
    sdks = (PROVIDER_HTTP_PACKAGES, *(PROVIDER_PACKAGES[p] for p in providers)) if providers else ()
    return {
        **HANDLERS,
        WORKER_HANDLER: (*HANDLERS[WORKER_HANDLER], *(p for ps in sdks for p in ps)),
    }


def extra_entries(config: LockgateConfig, handler: str) -> list[str]:
    """Modules a function must import from its asset and layers besides its entry point: the
    adapters (and so the SDKs) of the providers the worker's models use."""
    if handler != WORKER_HANDLER:
        return []
    return [f"orchestrator.models.{p}" for p in config.models.providers]


# What the Lambda Python runtime itself provides besides the standard library.
RUNTIME_MODULES = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
)
RUNTIME_DISTRIBUTIONS = frozenset({*RUNTIME_MODULES - {"dateutil"}, "python_dateutil"})


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def synth_config(request: pytest.FixtureRequest) -> LockgateConfig:
    return CONFIGS[request.param]()


@pytest.fixture(scope="module")
def cloud_assembly(synth_config: LockgateConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context(), outdir=str(outdir))
    build(app, synth_config)
    add_checks(app)
    app.synth()  # raises if cdk-nag or the built-in validation reports an error
    return outdir


def test_synth_has_no_unacknowledged_findings(cloud_assembly: Path) -> None:
    report = cloud_assembly / "validation-report.json"
    if report.exists():
        violations = [
            v
            for r in json.loads(report.read_text())["pluginReports"]
            for v in r.get("violations", [])
        ]
        assert violations == []
    assert set(templates(cloud_assembly)) == STACKS


def test_cfn_lint_finds_no_errors(cloud_assembly: Path) -> None:
    from cfnlint.api import lint_file

    templates = sorted(cloud_assembly.glob("*.template.json"))
    assert len(templates) == len(STACKS)
    matches = [m for t in templates for m in lint_file(t)]
    # W3037: an IAM action that does not exist (it would grant nothing, silently).
    errors = [str(m) for m in matches if m.rule.id.startswith("E") or m.rule.id == "W3037"]
    assert errors == []


# Phase 1 imports the entry module with nothing but the asset, its layers' packages and the
# runtime's (a package missing from them fails here, as it would in Lambda). Phase 2 adds this
# environment and imports every module of the asset: the project's own modules must all come
# from the asset, so a source file missing from it fails the import.
_PROBE = """
import importlib, pathlib, site, sys
asset, isolated, purelib, *entries = sys.argv[1:]
sys.path[:0] = [asset, isolated]
for entry in entries:
    importlib.import_module(entry)
site.addsitedir(purelib)
root = pathlib.Path(asset)
modules = sorted(
    '.'.join(p.relative_to(root).with_suffix('').parts).removesuffix('.__init__')
    for package in ('tools', 'orchestrator', 'db') for p in root.glob(f'{package}/**/*.py'))
for module in modules:
    importlib.import_module(module)
mine = [m for m in list(sys.modules.values())
        if (getattr(m, '__name__', '') or '').split('.')[0] in ('tools', 'orchestrator', 'db')]
bad = [m.__name__ for m in mine if m.__file__ and not m.__file__.startswith(asset)]
assert not bad, bad
"""


def _shipped(directories: list[Path]) -> tuple[set[str], set[str]]:
    """Top-level import names and distribution names found in an asset and its layers."""
    modules, distributions = set(), set()
    for directory in directories:
        for entry in directory.iterdir():
            if entry.name.endswith(".dist-info"):
                distributions.add(entry.name.split("-")[0].lower())
            elif entry.is_dir() or entry.suffix in (".py", ".so"):
                modules.add(entry.name.split(".")[0])
    return modules, distributions


def _isolated_site(directory: Path, modules: set[str], distributions: set[str]) -> Path:
    """This environment's installed packages, cut down to the ones the function ships with
    (links, so their native parts stay the ones built for this machine)."""
    directory.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.endswith(".dist-info"):
            keep = entry.name.split("-")[0].lower() in distributions | RUNTIME_DISTRIBUTIONS
        else:
            keep = entry.name.split(".")[0] in modules | RUNTIME_MODULES
        if keep:
            (directory / entry.name).symlink_to(entry)
    return directory


def test_every_function_is_import_checked(cloud_assembly: Path) -> None:
    assert {f.handler for f in function_assets(cloud_assembly)} == set(HANDLERS)


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_a_function_imports_its_handler_from_its_asset_and_layers(
    cloud_assembly: Path, synth_config: LockgateConfig, tmp_path: Path, handler: str
) -> None:
    ((code, layers),) = [
        (f.code, f.layers) for f in function_assets(cloud_assembly) if f.handler == handler
    ]
    module = handler.rsplit(".", 1)[0]
    if not (code / f"{module.replace('.', '/')}.py").exists():
        pytest.skip(f"{module} is not written yet: its function cannot be import-checked")
    modules, distributions = _shipped([code, *(layer / "python" for layer in layers)])
    isolated = _isolated_site(tmp_path / "site", modules, distributions)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "PYTHON"))}
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _PROBE,
            str(code),
            str(isolated),
            sysconfig.get_paths()["purelib"],
            module,
            *extra_entries(synth_config, handler),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "AWS_DEFAULT_REGION": "us-east-1"},
        cwd=code,
    )
    assert result.returncode == 0, f"{handler}: {result.stderr}"


def test_assets_are_small_and_never_carry_boto(
    cloud_assembly: Path, synth_config: LockgateConfig
) -> None:
    functions = function_assets(cloud_assembly)
    needs_by_handler = handler_needs(synth_config)
    for function in functions:
        key = f"{function.stack}:{function.handler}"
        for directory in (function.code, *function.layers):
            names = {p.name for p in directory.rglob("*")}
            assert not names & {"boto3", "botocore"}, key
        if function.is_tool:
            assert tree_size(function.code) < 1 * MB, key
            assert function.size < TOOL_MAX_BYTES, key
        elif function.handler.startswith("orchestrator.") and (
            function.handler != WEBSOCKET_AUTHORIZER
        ):
            # The authorizer alone carries cryptography (PyJWT's RS256), and the migrations
            # psycopg with libpq: see docs/DEPLOY.md. The providers' SDK layers have a budget
            # of their own.
            sdk_layers = [layer for layer in function.layers if _holds_only(layer, PROVIDER_SDKS)]
            sdk_bytes = sum(tree_size(layer) for layer in sdk_layers)
            assert function.size - sdk_bytes < SESSION_FUNCTION_MAX_BYTES, key
            assert sdk_bytes < PROVIDER_LAYERS_MAX_BYTES, key
        shipped = {
            p.name.split("-")[0].lower().replace("_", "-")
            for directory in (function.code, *function.layers)
            for p in directory.rglob("*.dist-info")
        }
        needs = set(needs_by_handler[function.handler])
        assert needs <= shipped, (key, needs - shipped)
        # Only the WebSocket authorizer carries the token-verification packages, and only
        # the tools that use PostgreSQL its driver.
        assert bool(shipped & set(AUTH_PACKAGES)) == (set(AUTH_PACKAGES) <= needs), key
        assert ("pg8000" in shipped) == ("pg8000" in needs), key
        # Only the worker carries a provider's SDK, and only for the providers its models use.
        for sdk in PROVIDER_PACKAGES:
            assert (sdk in shipped) == (sdk in needs), key
        for layer in function.layers:
            assert [p.name for p in layer.iterdir()] == ["python"], key
    tool_handlers = {f"tools.{s.name}.handler.handler" for s in CONTRACTS}
    assert tool_handlers <= {f.handler for f in functions}


def _holds_only(layer: Path, packages: set[str]) -> bool:
    names = {
        p.name.split("-")[0].lower().replace("_", "-")
        for p in (layer / "python").glob("*.dist-info")
    }
    return bool(names) and names <= packages


def _nag_findings(outdir: Path) -> set[tuple[str, str]]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return {
        (v["ruleName"], c["constructPath"])
        for r in report["pluginReports"]
        for v in r["violations"]
        for c in v["violatingConstructs"]
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_acknowledgement_answers_a_real_finding(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the acknowledgements the app makes, with their reasons
    config = CONFIGS[name]()
    app = App(context={**cdk_context(), "aws:cdk:bundling-stacks": []})
    build(app, config)
    acknowledged = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    if rule.startswith("Annotation::AwsSolutions-"):
                        acknowledged[(rule.removeprefix("Annotation::"), construct.node.path)] = (
                            reason
                        )
    # When cdk-nag runs on the same app with every acknowledgement dropped
    monkeypatch.setattr(Validations, "acknowledge", lambda self, *rules: None)
    bare = App(
        context={**cdk_context(), "aws:cdk:bundling-stacks": []},
        outdir=str(tmp_path),
        builtin_cloud_formation_validation=False,
    )
    build(bare, config)
    add_checks(bare)
    with pytest.raises(Exception, match="ValidationFailed"):
        bare.synth()
    findings = _nag_findings(tmp_path)
    # Then each finding has exactly one acknowledgement on its construct, and none is stale
    for rule, path in findings:
        owners = [p for (r, p) in acknowledged if r == rule and f"{path}/".startswith(f"{p}/")]
        assert len(owners) == 1, (rule, path)
    for rule, owner in acknowledged:
        assert any(r == rule and f"{p}/".startswith(f"{owner}/") for r, p in findings), (
            rule,
            owner,
        )
    assert all(len(reason) > 60 for reason in acknowledged.values())
