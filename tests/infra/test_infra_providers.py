"""Model providers besides Bedrock in the templates: a configuration that allows `openai:` and
`anthropic:` models gives the worker, and only the worker, their SDK layers and read access to
exactly their key secrets, whose ARNs (never a key) reach it by environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from cfn_model import Assembly, Ref
from conftest import cdk_context, provider_config

from infra.bundling import PROVIDER_HTTP_PACKAGES, PROVIDER_PACKAGES, Bundler
from infra.config import LockgateConfig
from infra.stacks.api import WORKER_HANDLER
from infra.wiring import PLATFORM, Lockgate, build
from orchestrator.settings import PROVIDER_KEY_PLACEHOLDER, OrchestratorSettings


@pytest.fixture(scope="module")
def providers() -> LockgateConfig:
    return provider_config()


@pytest.fixture(scope="module")
def with_providers(providers: LockgateConfig) -> tuple[Lockgate, Assembly]:
    app = App(
        context={**cdk_context(), "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
    )
    lockgate = build(app, providers)
    templates = {s.stack_name: Template.from_stack(s).to_json() for s in lockgate.stacks}
    return lockgate, Assembly(templates)


def _layer_key(packages: Sequence[str]) -> str:
    """The asset key of the layer holding exactly these pinned packages."""
    app = App(context={"aws:cdk:bundling-stacks": []})
    code = Bundler(PLATFORM).layer_code(packages).bind(Stack(app, "Probe"))
    assert code.s3_location is not None
    return code.s3_location.object_key


def _layer_keys(assembly: Assembly, function: Ref) -> set[str]:
    stack, _ = function
    keys = set()
    for layer in assembly.properties(function).get("Layers", []):
        target = assembly.target(stack, layer)
        assert target is not None
        keys.add(assembly.properties(target)["Content"]["S3Key"])
    return keys


def _provider_secrets(assembly: Assembly, lockgate: Lockgate) -> dict[str, Ref]:
    data = lockgate.data.stack_name
    return {
        logical.removeprefix("ModelProviderKey").lower(): (data, logical)
        for logical in assembly.resources(data, "AWS::SecretsManager::Secret")
        if logical.startswith("ModelProviderKey")
    }


def _targets(assembly: Assembly, stack: str, values: Sequence[Any]) -> set[Ref | None]:
    return {assembly.target(stack, v) for v in values}


def test_each_provider_gets_one_secret_holding_only_the_placeholder(
    with_providers: tuple[Lockgate, Assembly],
) -> None:
    lockgate, assembly = with_providers
    secrets = _provider_secrets(assembly, lockgate)

    assert set(secrets) == {"openai", "anthropic"}
    for ref in secrets.values():
        properties = assembly.properties(ref)
        assert properties["SecretString"] == PROVIDER_KEY_PLACEHOLDER
        assert "GenerateSecretString" not in properties


def test_only_the_worker_carries_the_provider_sdks(
    with_providers: tuple[Lockgate, Assembly],
) -> None:
    _, assembly = with_providers
    sdk_layers = {
        "http": _layer_key(PROVIDER_HTTP_PACKAGES),
        **{p: _layer_key(packages) for p, packages in PROVIDER_PACKAGES.items()},
    }
    worker = assembly.function(WORKER_HANDLER)

    assert set(sdk_layers.values()) <= _layer_keys(assembly, worker)
    for ref, _function in assembly.all_resources("AWS::Lambda::Function"):
        if ref != worker:
            assert not _layer_keys(assembly, ref) & set(sdk_layers.values()), ref


def test_the_worker_role_alone_reads_exactly_the_provider_secrets(
    with_providers: tuple[Lockgate, Assembly],
) -> None:
    lockgate, assembly = with_providers
    secrets = set(_provider_secrets(assembly, lockgate).values())
    worker_role = assembly.function_role(assembly.function(WORKER_HANDLER))

    (read,) = [
        s
        for s in assembly.statements_of(worker_role)
        if any(a.startswith("secretsmanager:") for a in s.actions)
    ]
    assert read.actions == {"secretsmanager:GetSecretValue"}
    assert _targets(assembly, worker_role[0], read.resources) == secrets
    for statement in assembly.statements():
        if statement.role == worker_role:
            continue
        stack = statement.role[0]
        assert not _targets(assembly, stack, statement.resources) & secrets, statement.role
        assert "*" not in statement.resources or not any(
            a.startswith("secretsmanager:") for a in statement.actions
        )


def test_the_worker_is_told_the_secret_arns_and_base_url_never_a_key(
    with_providers: tuple[Lockgate, Assembly], providers: LockgateConfig
) -> None:
    lockgate, assembly = with_providers
    secrets = _provider_secrets(assembly, lockgate)
    worker = assembly.function(WORKER_HANDLER)
    env = assembly.properties(worker)["Environment"]["Variables"]

    assert env["OPENAI_BASE_URL"] == providers.models.base_urls["openai"]
    assert "ANTHROPIC_BASE_URL" not in env
    # The configured prices reach the worker as the settings it reads them from.
    prices = OrchestratorSettings.from_env({"LOCKGATE_PRICES": env["LOCKGATE_PRICES"]}).prices
    assert prices == providers.models.prices
    assert not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"} & set(env)
    # {"anthropic":"<arn>","openai":"<arn>"}: the literal parts are JSON punctuation and names.
    parts = env["LOCKGATE_PROVIDER_SECRETS"]["Fn::Join"][1]
    literals = "".join(p for p in parts if isinstance(p, str))
    assert literals == '{"anthropic":"","openai":""}'
    references = [p for p in parts if not isinstance(p, str)]
    assert [assembly.target(worker[0], r) for r in references] == [
        secrets["anthropic"],
        secrets["openai"],
    ]
    for _, function in assembly.all_resources("AWS::Lambda::Function"):
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert PROVIDER_KEY_PLACEHOLDER not in str(variables)
        if function["Properties"]["Handler"] != WORKER_HANDLER:
            assert "LOCKGATE_PROVIDER_SECRETS" not in variables


def test_bedrock_only_models_add_no_secret_layer_or_variable(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    assert config.models.providers == ()
    assert _provider_secrets(assembly, lockgate) == {}
    worker = assembly.function(WORKER_HANDLER)
    env = assembly.properties(worker)["Environment"]["Variables"]
    assert not {"LOCKGATE_PROVIDER_SECRETS", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"} & set(env)
    assert not any(
        a.startswith("secretsmanager:") for a in assembly.actions_of(assembly.function_role(worker))
    )
