"""A tool with no database and no upstream (python_exec) is deployed with no network path:
in the isolated subnets, behind a security group without rules that nothing admits, with a
role that can only write its own logs and attach the function to the VPC."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from cfn_model import Assembly, Ref

from infra.config import FunctionConfig, LockgateConfig, PythonExecConfig
from infra.constructs.lambda_role import VPC_ACTIONS
from infra.constructs.tool_function import pascal
from infra.wiring import Lockgate, build
from tools.kit.contract import ToolSpec
from tools.python_exec.contract import SPEC as PYTHON_EXEC
from tools.python_exec.sandbox import SandboxSettings
from tools.registry import CONTRACTS

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
OFFLINE = [spec for spec in CONTRACTS if not spec.needs_network]
# What CDK writes for a group with `allow_all_outbound=False` and no rule of its own: a rule
# that matches no packet (ICMP type 252, code 86, to the broadcast address).
MATCHES_NOTHING = {
    "CidrIp": "255.255.255.255/32",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}
# Anything that gives a subnet a way out of the VPC.
ROUTES_OUT = (
    "AWS::EC2::Route",
    "AWS::EC2::NatGateway",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::EgressOnlyInternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::VPCPeeringConnection",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::TransitGatewayVpcAttachment",
)


def test_python_exec_is_a_tool_without_network() -> None:
    assert PYTHON_EXEC in OFFLINE


def _function(assembly: Assembly, lockgate: Lockgate, spec: ToolSpec) -> Ref:
    stack = lockgate.tools.stack_name
    (logical,) = [
        k
        for k in assembly.resources(stack, "AWS::Lambda::Function")
        if k.startswith(f"{pascal(spec.name)}Function")
    ]
    return stack, logical


def _values(value: Any) -> Iterator[Any]:
    """Every value nested in a resource's properties, the containers included."""
    yield value
    children = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, Mapping | list):
        for child in children:
            yield from _values(child)


def _referrers(assembly: Assembly, target: Ref) -> set[Ref]:
    """Every resource, in any stack, whose properties point at `target`."""
    found = set()
    for stack in assembly.templates:
        for logical, resource in assembly.resources(stack).items():
            if any(
                assembly.target(stack, v) == target for v in _values(resource.get("Properties", {}))
            ):
                found.add((stack, logical))
    return found


def _security_group(assembly: Assembly, function: Ref) -> Ref:
    (group,) = assembly.properties(function)["VpcConfig"]["SecurityGroupIds"]
    target = assembly.target(function[0], group)
    assert target is not None
    return target


@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_its_role_writes_its_own_logs_and_attaches_to_the_vpc_only(
    assembly: Assembly, lockgate: Lockgate, spec: ToolSpec
) -> None:
    function = _function(assembly, lockgate, spec)
    role = assembly.function_role(function)
    statements = assembly.statements_of(role)
    assert sorted(s.raw["Sid"] for s in statements) == ["AttachToVpc", "WriteOwnLogs"]
    by_sid = {s.raw["Sid"]: s for s in statements}
    logs = by_sid["WriteOwnLogs"]
    assert logs.actions == LOGS
    own_log_group = assembly.target(
        function[0], assembly.properties(function)["LoggingConfig"]["LogGroup"]
    )
    assert [assembly.target(function[0], r) for r in logs.resources] == [own_log_group]
    attach = by_sid["AttachToVpc"]
    assert attach.actions == set(VPC_ACTIONS)
    assert attach.resources == ("*",)
    # No secret: not in its own policy, and no other policy or resource names its role.
    assert not any(a.startswith("secretsmanager:") for s in statements for a in s.actions)
    assert _referrers(assembly, role) == {function}


@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_its_security_group_has_no_rule_and_nothing_admits_it(
    assembly: Assembly, lockgate: Lockgate, spec: ToolSpec
) -> None:
    function = _function(assembly, lockgate, spec)
    group = _security_group(assembly, function)
    properties = assembly.properties(group)
    assert properties.get("SecurityGroupIngress", []) == []
    egress = properties.get("SecurityGroupEgress", [])
    assert [{k: rule.get(k) for k in MATCHES_NOTHING} for rule in egress] == [MATCHES_NOTHING]
    # Its own group, in the data stack's VPC, named by the function and nothing else: no
    # ingress on the database's or an endpoint's group, no egress rule of its own.
    tool_groups = [
        _security_group(assembly, f)
        for f in (_function(assembly, lockgate, s) for s in CONTRACTS if s.needs_database)
    ]
    assert group not in tool_groups
    assert assembly.target(group[0], properties["VpcId"]) == (lockgate.data.stack_name, "Vpc")
    assert _referrers(assembly, group) == {function}


@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_it_runs_in_subnets_without_a_route_out(
    assembly: Assembly, lockgate: Lockgate, spec: ToolSpec
) -> None:
    function = _function(assembly, lockgate, spec)
    subnets = {
        assembly.target(function[0], s)
        for s in assembly.properties(function)["VpcConfig"]["SubnetIds"]
    }
    data = lockgate.data.stack_name
    assert subnets == {(data, k) for k in assembly.resources(data, "AWS::EC2::Subnet")}
    for stack in assembly.templates:
        for type_ in ROUTES_OUT:
            assert assembly.resources(stack, type_) == {}, (stack, type_)


@pytest.mark.parametrize("spec", OFFLINE, ids=lambda s: s.name)
def test_it_is_told_no_secret_and_no_upstream(
    assembly: Assembly, lockgate: Lockgate, spec: ToolSpec
) -> None:
    env = assembly.properties(_function(assembly, lockgate, spec))["Environment"]["Variables"]
    assert "LOCKGATE_DB_SECRET_ID" not in env
    assert "LOCKGATE_UPSTREAM_URL" not in env


def test_python_exec_is_sized_and_limited_from_the_configuration(config: LockgateConfig) -> None:
    # Given limits that differ from every default
    limits = PythonExecConfig(program_cpu_seconds=7, program_memory_mb=300, numeric=True)
    size = FunctionConfig(memory_mb=2048, timeout_seconds=20)
    app = App(context={"aws:cdk:bundling-stacks": []}, builtin_cloud_formation_validation=False)
    configured = config.model_copy(
        update={"python_exec": limits, "tool_function_overrides": {PYTHON_EXEC.name: size}}
    )
    # When the stacks are built
    stacks = build(app, configured)
    functions = Template.from_stack(stacks.tools).find_resources("AWS::Lambda::Function")
    (function,) = [f for k, f in functions.items() if k.startswith(pascal(PYTHON_EXEC.name))]
    # Then the function reads exactly those limits, and has the size it was given
    properties = function["Properties"]
    sandbox = SandboxSettings.from_env(properties["Environment"]["Variables"])
    assert (sandbox.cpu_seconds, sandbox.memory_mb, sandbox.numeric) == (7, 300, True)
    assert (properties["MemorySize"], properties["Timeout"]) == (2048, 20)
    # and every other tool keeps the shared size
    others = [f for k, f in functions.items() if not k.startswith(pascal(PYTHON_EXEC.name))]
    assert {f["Properties"]["MemorySize"] for f in others} == {config.tool_function.memory_mb}
    # and numpy's layer goes to python_exec alone, on top of the layers every tool has
    reader = next(s for s in CONTRACTS if s.upstream is not None and not s.needs_database)
    (plain,) = [f for k, f in functions.items() if k.startswith(pascal(reader.name))]
    shared = [json.dumps(layer) for layer in plain["Properties"]["Layers"]]
    own = [json.dumps(layer) for layer in properties["Layers"] if json.dumps(layer) not in shared]
    assert len(own) == 1
    assert len(properties["Layers"]) == len(shared) + 1
    assert not any(own[0] in json.dumps(f["Properties"]["Layers"]) for f in others)


def test_without_numeric_python_exec_gets_only_the_shared_layers(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    assert config.python_exec.numeric is False
    layers = {
        spec.name: assembly.properties(_function(assembly, lockgate, spec))["Layers"]
        for spec in CONTRACTS
        if not spec.needs_database
    }
    assert len({json.dumps(v) for v in layers.values()}) == 1, layers


def test_python_exec_must_fit_its_program(config: LockgateConfig) -> None:
    def overridden(name: str, function: FunctionConfig) -> LockgateConfig:
        return config.model_copy(update={"tool_function_overrides": {name: function}})

    tight = FunctionConfig(memory_mb=256, timeout_seconds=15)
    with pytest.raises(ValueError, match="MB"):
        build(App(), overridden(PYTHON_EXEC.name, tight))
    short = FunctionConfig(memory_mb=1769, timeout_seconds=8)
    with pytest.raises(ValueError, match="wall clock"):
        build(App(), overridden(PYTHON_EXEC.name, short))
    with pytest.raises(ValueError, match="unknown tools"):
        build(App(), overridden("no_such", config.tool_function))
