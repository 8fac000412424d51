"""The IAM roles of a one-off ECS Fargate job: trusted by ECS tasks alone, each with one
inline policy the deploy manages (:func:`ensure_role`), and the statements of the two a
job needs: its execution role's (:func:`execution_statements`: pull the image, write
the logs) and a task role's that reads and writes one S3 object
(:func:`object_statements`). Every call goes through :meth:`deploy.aws.Aws.call`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import ACCOUNT_PLACEHOLDER, Aws, error_code

ECS_TASKS = "ecs-tasks.amazonaws.com"


def policy(statements: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def execution_statements(repository_arn: str, log_group_arn: str) -> list[dict[str, Any]]:
    """What ECS itself needs to start the task: pull its image, write its log stream."""
    return [
        # GetAuthorizationToken has no resource-level permissions.
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
            ],
            "Resource": repository_arn,
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:log-stream:*",
        },
    ]


def object_statements(partition: str, bucket: str, key: str) -> list[dict[str, Any]]:
    """Read and write one object, and list its bucket."""
    return [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:{partition}:s3:::{bucket}/{key}",
        },
        # Without it S3 answers a missing key with 403, not 404: a job comparing with the
        # object already there could not tell its first run from a denial.
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:{partition}:s3:::{bucket}",
        },
    ]


def ensure_role(
    aws: Aws,
    name: str,
    policy_name: str,
    statements: Sequence[Any],
    warn: Callable[[str], None],
) -> str:
    """The ARN of role ``name`` (created when missing). On every deploy its trust policy
    is set to ECS tasks only and its inline policy ``policy_name`` to ``statements``. Any
    other policy a reused role has (attached, or inline under another name) is left in
    place, since another workload may rely on it, and ``warn`` hears of each."""
    try:
        found = aws.call("iam", "get_role", {"RoleName": name})
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        found = {}
    trust = policy(
        [{"Effect": "Allow", "Principal": {"Service": ECS_TASKS}, "Action": "sts:AssumeRole"}]
    )
    reused = "Role" in found
    if reused:
        arn = str(found["Role"]["Arn"])
    else:
        placeholder = {"Role": {"Arn": f"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:role/{name}"}}
        created = aws.call(
            "iam",
            "create_role",
            {"RoleName": name, "AssumeRolePolicyDocument": trust},
            placeholder,
        )
        arn = str(created["Role"]["Arn"])
    if reused or aws.dry_run:
        aws.call("iam", "update_assume_role_policy", {"RoleName": name, "PolicyDocument": trust})
    aws.call(
        "iam",
        "put_role_policy",
        {"RoleName": name, "PolicyName": policy_name, "PolicyDocument": policy(statements)},
    )
    if reused or aws.dry_run:
        for attached in _pages(aws, "list_attached_role_policies", name, "AttachedPolicies"):
            warn(f"role {name} also has the attached policy {attached['PolicyArn']}{KEPT}")
        for inline in _pages(aws, "list_role_policies", name, "PolicyNames"):
            if inline != policy_name:
                warn(f"role {name} also has the inline policy {inline}{KEPT}")
    return arn


#: Another workload may rely on a policy the deploy did not put on a role it reuses.
KEPT = " (left in place: the deploy does not manage it)"


def _pages(aws: Aws, operation: str, role_name: str, key: str) -> list[Any]:
    """Every item under ``key`` of an IAM role listing, page after page."""
    items: list[Any] = []
    params: dict[str, Any] = {"RoleName": role_name}
    while True:
        page = aws.call("iam", operation, params)
        items.extend(page.get(key, []))
        if not page.get("IsTruncated"):
            return items
        params["Marker"] = page["Marker"]
