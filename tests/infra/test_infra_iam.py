"""Invariant 2 in the templates: one role per tool, own secret only, only the orchestrator
(the worker) invokes tools and models, and every other function holds exactly its own grants."""

from __future__ import annotations

from cfn_model import Assembly, Ref

from infra.config import LockgateConfig
from infra.constructs.lambda_role import VPC_ACTIONS
from infra.constructs.tool_function import pascal
from infra.stacks.api import (
    API_HANDLER,
    API_TABLE_ACTIONS,
    DEAD_LETTER_HANDLER,
    WEBSOCKET_AUTHORIZER,
    WEBSOCKET_HANDLER,
    WORKER_HANDLER,
)
from infra.stacks.sessions import OWNER_INDEX
from infra.wiring import Lockgate
from orchestrator.sessions.dynamodb import OWNER_INDEX as STORE_OWNER_INDEX
from tools.registry import CONTRACTS

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def _tool_functions(assembly: Assembly, lockgate: Lockgate) -> dict[str, Ref]:
    stack = lockgate.tools.stack_name
    functions = assembly.resources(stack, "AWS::Lambda::Function")
    found = {}
    for spec in CONTRACTS:
        (logical,) = [k for k in functions if k.startswith(f"{pascal(spec.name)}Function")]
        found[spec.name] = (stack, logical)
    return found


def _role(assembly: Assembly, handler: str) -> Ref:
    return assembly.function_role(assembly.function(handler))


def _orchestrator_role(assembly: Assembly, lockgate: Lockgate) -> Ref:
    """The worker's role, which must be the tools stack's orchestrator role."""
    role = _role(assembly, WORKER_HANDLER)
    assert role == (lockgate.tools.stack_name, role[1])
    assert role[1].startswith("OrchestratorRole")
    return role


def _session_resource(assembly: Assembly, stack: str, value: object) -> str:
    """`SessionsTable`, `SessionsQueue`, ...: the sessions-stack resource a value points at."""
    target = assembly.target(stack, value)
    assert target is not None and target[0].endswith("Sessions"), value
    return target[1]


def test_each_tool_has_its_own_role(assembly: Assembly, lockgate: Lockgate) -> None:
    roles = [assembly.function_role(f) for f in _tool_functions(assembly, lockgate).values()]
    assert len(set(roles)) == len(CONTRACTS)
    assert _orchestrator_role(assembly, lockgate) not in roles


def test_every_session_function_has_its_own_role(assembly: Assembly, lockgate: Lockgate) -> None:
    handlers = (API_HANDLER, DEAD_LETTER_HANDLER, WEBSOCKET_HANDLER, WEBSOCKET_AUTHORIZER)
    roles = {_role(assembly, h) for h in handlers}
    assert len(roles) == len(handlers)
    assert _orchestrator_role(assembly, lockgate) not in roles
    tool_roles = {assembly.function_role(f) for f in _tool_functions(assembly, lockgate).values()}
    assert not roles & tool_roles


def test_a_tool_role_reads_exactly_its_own_secret(assembly: Assembly, lockgate: Lockgate) -> None:
    data = lockgate.data.stack_name
    for spec in CONTRACTS:
        function = _tool_functions(assembly, lockgate)[spec.name]
        statements = assembly.statements_of(assembly.function_role(function))
        secret_statements = [
            s for s in statements if any(a.startswith("secretsmanager:") for a in s.actions)
        ]
        env = assembly.properties(function)["Environment"]["Variables"]
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


def test_only_the_worker_can_invoke_tools(assembly: Assembly, lockgate: Lockgate) -> None:
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
    # And the orchestrator's role runs the worker and nothing else.
    runs = [
        ref
        for ref, _ in assembly.all_resources("AWS::Lambda::Function")
        if assembly.function_role(ref) == orchestrator
    ]
    assert runs == [assembly.function(WORKER_HANDLER)]


def test_only_the_worker_calls_models(assembly: Assembly, lockgate: Lockgate) -> None:
    calling = {s.role for s in assembly.statements() if any("bedrock" in a for a in s.actions)}
    assert calling == {_orchestrator_role(assembly, lockgate)}


def test_the_worker_holds_exactly_its_grants(assembly: Assembly, lockgate: Lockgate) -> None:
    statements = assembly.statements_of(_orchestrator_role(assembly, lockgate))
    assert {a for s in statements for a in s.actions} == {
        "bedrock:InvokeModel",
        "lambda:InvokeFunction",
        *LOGS,
        *(f"dynamodb:{a}" for a in (*API_TABLE_ACTIONS, "DeleteItem")),
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "execute-api:ManageConnections",
    }  # and in particular no secret
    api = lockgate.api.stack_name
    by_service = {next(iter(s.actions)).split(":")[0]: s for s in statements}
    (table,) = by_service["dynamodb"].resources
    assert _session_resource(assembly, api, table) == "SessionsTable"
    (queue,) = by_service["sqs"].resources
    assert _session_resource(assembly, api, queue) == "SessionsQueue"
    (connections,) = by_service["execute-api"].resources
    parts = connections["Fn::Join"][1]
    assert {"Ref": "WebSocketApi"} in parts
    assert parts[-1] == f"/{lockgate.api.websocket_stage.stage_name}/POST/@connections/*"


def test_the_worker_invokes_only_the_configured_models(
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


def test_the_api_function_cannot_invoke_tools_or_models(
    assembly: Assembly, lockgate: Lockgate
) -> None:
    statements = assembly.statements_of(_role(assembly, API_HANDLER))
    actions = {a for s in statements for a in s.actions}
    assert not any(a.startswith(("lambda:", "bedrock:", "execute-api:")) for a in actions)
    assert actions == {*LOGS, *(f"dynamodb:{a}" for a in API_TABLE_ACTIONS), "sqs:SendMessage"}
    api = lockgate.api.stack_name
    for statement in statements:
        if statement.actions <= LOGS:
            continue
        (resource,) = statement.resources
        if statement.raw.get("Sid") == "SessionsByOwner":
            # Only the owner index, for listing a caller's sessions.
            assert statement.actions == {"dynamodb:Query"}
            table, suffix = resource["Fn::Join"][1]
            assert _session_resource(assembly, api, table) == "SessionsTable"
            assert suffix == f"/index/{OWNER_INDEX}"
            continue
        expected = "SessionsQueue" if statement.actions == {"sqs:SendMessage"} else "SessionsTable"
        assert _session_resource(assembly, api, resource) == expected


def test_the_owner_index_is_the_one_the_store_queries() -> None:
    assert OWNER_INDEX == STORE_OWNER_INDEX


def test_the_dead_letter_function_cannot_send_or_invoke_anything(
    assembly: Assembly, lockgate: Lockgate
) -> None:
    statements = assembly.statements_of(_role(assembly, DEAD_LETTER_HANDLER))
    actions = {a for s in statements for a in s.actions}
    assert actions == {
        *LOGS,
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    (consume,) = [s for s in statements if any(a.startswith("sqs:") for a in s.actions)]
    (resource,) = consume.resources
    assert _session_resource(assembly, lockgate.api.stack_name, resource) == (
        "SessionsDeadLetterQueue"
    )


def test_websocket_functions_reach_the_table_only(assembly: Assembly, lockgate: Lockgate) -> None:
    handler = assembly.statements_of(_role(assembly, WEBSOCKET_HANDLER))
    for statement in handler:
        if statement.actions <= LOGS:
            continue
        assert all(a.startswith("dynamodb:") for a in statement.actions)
        (resource,) = statement.resources
        assert _session_resource(assembly, lockgate.api.stack_name, resource) == "SessionsTable"
    # The authorizer only checks a token's signature against the user pool's public keys.
    assert assembly.actions_of(_role(assembly, WEBSOCKET_AUTHORIZER)) == LOGS


def test_no_managed_policies_and_no_wildcard_actions(assembly: Assembly) -> None:
    for _, role in assembly.all_resources("AWS::IAM::Role"):
        assert "ManagedPolicyArns" not in role["Properties"]
    for statement in assembly.statements():
        assert not any(a == "*" or a.endswith(":*") for a in statement.actions), statement.raw
        # A bare "*" resource only where AWS offers nothing narrower (network interfaces).
        if "*" in statement.resources:
            assert statement.actions <= set(VPC_ACTIONS), statement.raw
