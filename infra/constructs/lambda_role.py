"""An execution role for one Lambda function: inline statements only, no managed policies."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

# What Lambda needs to attach a function to a VPC (the actions of AWSLambdaVPCAccessExecutionRole).
VPC_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)


class LambdaRole(iam.Role):
    """A role only Lambda can assume, holding exactly the statements it is given.

    The statements are inline in the role itself, so they exist before the function is
    created (Lambda checks the VPC permissions at creation time). `log_group` adds write
    access to that one log group; `vpc_access` adds the network-interface actions Lambda
    needs to place the function in a VPC.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        description: str,
        log_group: logs.ILogGroup | None = None,
        statements: Sequence[iam.PolicyStatement] = (),
        vpc_access: bool = False,
    ) -> None:
        all_statements = list(statements)
        if log_group is not None:
            all_statements.append(
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
        if vpc_access:
            all_statements.append(
                iam.PolicyStatement(sid="AttachToVpc", actions=list(VPC_ACTIONS), resources=["*"])
            )
        super().__init__(
            scope,
            id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
            inline_policies=(
                {"Runtime": iam.PolicyDocument(statements=all_statements)}
                if all_statements
                else None
            ),
        )
        if vpc_access:
            Validations.of(self).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason=(
                        "Lambda creates and deletes the function's network interfaces with this "
                        "role; their ids are unknown in advance and ec2:Describe* has no "
                        "resource-level permissions. Same actions as AWSLambdaVPCAccessExecutionRole, "
                        "without attaching a managed policy."
                    ),
                )
            )
