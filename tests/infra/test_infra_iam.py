"""Invariant 2 in the templates: one role per tool, own secret only, only the orchestrator
invokes tools, and the orchestrator never reads a database secret."""

from __future__ import annotations

from cfn_model import Assembly, Ref

from infra.config import LockgateConfig
from infra.constructs.tool_function import pascal
from infra.wiring import Lockgate
from tools.registry import CONTRACTS


def _tool_functions(assembly: Assembly, lockgate: Lockgate) -> dict[str, Ref]:
    stack = lockgate.tools.stack_name
    functions = assembly.resources(stack, "AWS::Lambda::Function")
    found = {}
    for spec in CONTRACTS:
        (logical,) = [k for k in functions if k.startswith(f"{pascal(spec.name)}Function")]
        found[spec.name] = (stack, logical)
    return found


def _orchestrator_role(assembly: Assembly, lockgate: Lockgate) -> Ref:
    stack = lockgate.api.stack_name
    (function,) = [
        (stack, k)
        for k, v in assembly.resources(stack, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "orchestrator.handlers.api.handler"
    ]
    return assembly.function_role(function)


def test_each_tool_has_its_own_role(assembly: Assembly, lockgate: Lockgate) -> None:
    roles = [assembly.function_role(f) for f in _tool_functions(assembly, lockgate).values()]
    assert len(set(roles)) == len(CONTRACTS)
    assert _orchestrator_role(assembly, lockgate) not in roles


def test_a_tool_role_reads_exactly_its_own_secret(assembly: Assembly, lockgate: Lockgate) -> None:
    data = lockgate.data.stack_name
    for spec in CONTRACTS:
        function = _tool_functions(assembly, lockgate)[spec.name]
        statements = assembly.statements_of(assembly.function_role(function))
        secret_statements = [
            s for s in statements if any(a.startswith("secretsmanager:") for a in s.actions)
        ]
        env = assembly.resources(function[0])[function[1]]["Properties"]["Environment"]["Variables"]
        if not spec.needs_database:
            # A tool without database privileges has no secret at all.
            assert secret_statements == [], spec.name
            assert "LOCKGATE_DB_SECRET_ID" not in env
            continue
        assert len(secret_statements) == 1, spec.name
        (statement,) = secret_statements
        assert statement.actions == {"secretsmanager:GetSecretValue"}
        targets = [assembly.target(function[0], r) for r in statement.resources]
        assert targets == [(data, f"ToolSecret{pascal(spec.name)}Attachment")], spec.name
        # The function is told the same secret.
        assert assembly.target(function[0], env["LOCKGATE_DB_SECRET_ID"]) == targets[0]


def test_a_tool_role_cannot_invoke_lambdas(assembly: Assembly, lockgate: Lockgate) -> None:
    for function in _tool_functions(assembly, lockgate).values():
        for statement in assembly.statements_of(assembly.function_role(function)):
            assert not any(a.startswith("lambda:") or a == "*" for a in statement.actions)


def test_only_the_orchestrator_can_invoke_tools(assembly: Assembly, lockgate: Lockgate) -> None:
    orchestrator = _orchestrator_role(assembly, lockgate)
    tools = _tool_functions(assembly, lockgate)
    # Resource policies: exactly one per tool, naming the orchestrator's role.
    permissions = list(assembly.all_resources("AWS::Lambda::Permission"))
    for function in tools.values():
        on_tool = [
            p
            for (stack, _), p in permissions
            if assembly.target(stack, p["Properties"]["FunctionName"]) == function
        ]
        assert len(on_tool) == 1
        properties = on_tool[0]["Properties"]
        assert properties["Action"] == "lambda:InvokeFunction"
        assert assembly.target(function[0], properties["Principal"]) == orchestrator
    # Identity policies: only the orchestrator may call lambda:InvokeFunction, on tools only.
    invoking = [s for s in assembly.statements() if any(a.startswith("lambda:") for a in s.actions)]
    assert {s.role for s in invoking} == {orchestrator}
    (statement,) = invoking
    assert statement.actions == {"lambda:InvokeFunction"}
    assert sorted(assembly.target(orchestrator[0], r) for r in statement.resources) == sorted(
        tools.values()
    )


def test_the_orchestrator_cannot_read_any_secret(assembly: Assembly, lockgate: Lockgate) -> None:
    actions = {
        a for s in assembly.statements_of(_orchestrator_role(assembly, lockgate)) for a in s.actions
    }
    assert actions == {
        "bedrock:InvokeModel",
        "lambda:InvokeFunction",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_the_orchestrator_invokes_only_the_configured_models(
    assembly: Assembly, lockgate: Lockgate, config: LockgateConfig
) -> None:
    (statement,) = [
        s
        for s in assembly.statements_of(_orchestrator_role(assembly, lockgate))
        if "bedrock:InvokeModel" in s.actions
    ]
    rendered = [str(r) for r in statement.resources]
    assert len(rendered) == len(config.models.model_ids)
    for model_id in config.models.model_ids:
        assert any(f"foundation-model/{model_id}" in r for r in rendered)


def test_no_managed_policies_and_no_wildcard_actions(assembly: Assembly) -> None:
    for _, role in assembly.all_resources("AWS::IAM::Role"):
        assert "ManagedPolicyArns" not in role["Properties"]
    for statement in assembly.statements():
        assert not any(a == "*" or a.endswith(":*") for a in statement.actions), statement.raw


def test_wildcard_resources_only_where_aws_requires_them(assembly: Assembly) -> None:
    # ec2 network-interface actions for VPC-attached functions have no resource-level ARNs.
    for statement in assembly.statements():
        if "*" in statement.resources:
            assert all(a.startswith("ec2:") for a in statement.actions), statement.raw
