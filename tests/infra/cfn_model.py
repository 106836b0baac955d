"""Reading synthesized templates across stacks: references, roles and their statements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Ref = tuple[str, str]  # (stack name, logical id)


@dataclass(frozen=True)
class Statement:
    """One IAM statement and the role (stack, logical id) it applies to."""

    role: Ref
    actions: frozenset[str]
    resources: tuple[Any, ...]
    raw: Mapping[str, Any]


class Assembly:
    """The templates of one app, keyed by stack name."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        self.templates = templates

    def resources(self, stack: str, type_: str | None = None) -> dict[str, Mapping[str, Any]]:
        return {
            k: v
            for k, v in self.templates[stack].get("Resources", {}).items()
            if type_ is None or v["Type"] == type_
        }

    def all_resources(self, type_: str) -> Iterator[tuple[Ref, Mapping[str, Any]]]:
        for stack in self.templates:
            for logical, resource in self.resources(stack, type_).items():
                yield (stack, logical), resource

    def target(self, stack: str, value: Any) -> Ref | None:
        """The resource a Ref / GetAtt / cross-stack output points at."""
        if not isinstance(value, Mapping) or len(value) != 1:
            return None
        ((key, arg),) = value.items()
        if key == "Ref":
            return (stack, arg) if arg in self.templates[stack].get("Resources", {}) else None
        if key == "Fn::GetAtt":
            return stack, arg[0]
        if key == "Fn::GetStackOutput":
            producer = arg["StackName"]
            return self.target(
                producer, self.templates[producer]["Outputs"][arg["OutputName"]]["Value"]
            )
        if key == "Fn::ImportValue":
            for producer, template in self.templates.items():
                for output in template.get("Outputs", {}).values():
                    if output.get("Export", {}).get("Name") == arg:
                        return self.target(producer, output["Value"])
        return None

    def statements(self) -> Iterator[Statement]:
        """Every identity-policy statement in the app, with the role it belongs to."""
        for ref, role in self.all_resources("AWS::IAM::Role"):
            for policy in role["Properties"].get("Policies", []):
                yield from _statements(ref, policy["PolicyDocument"])
        for (stack, _), policy in self.all_resources("AWS::IAM::Policy"):
            for role_value in policy["Properties"].get("Roles", []):
                role = self.target(stack, role_value)
                assert role is not None, f"policy attached to an unknown role {role_value}"
                yield from _statements(role, policy["Properties"]["PolicyDocument"])

    def statements_of(self, role: Ref) -> list[Statement]:
        return [s for s in self.statements() if s.role == role]

    def function(self, handler: str) -> Ref:
        """The one function in the app with this handler."""
        (found,) = [
            ref
            for ref, f in self.all_resources("AWS::Lambda::Function")
            if f["Properties"]["Handler"] == handler
        ]
        return found

    def properties(self, ref: Ref) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.resources(ref[0])[ref[1]]["Properties"]
        return properties

    def actions_of(self, role: Ref) -> set[str]:
        return {a for s in self.statements_of(role) for a in s.actions}

    def function_role(self, function: Ref) -> Ref:
        stack, _ = function
        role = self.target(stack, self.resources(stack)[function[1]]["Properties"]["Role"])
        assert role is not None
        return role


def _statements(role: Ref, document: Mapping[str, Any]) -> Iterator[Statement]:
    for statement in document["Statement"]:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        yield Statement(
            role=role,
            actions=frozenset([actions] if isinstance(actions, str) else actions),
            resources=tuple(resources if isinstance(resources, list) else [resources]),
            raw=statement,
        )
