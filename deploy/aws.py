"""The AWS and Docker steps of a one-off ECS Fargate job's deploy, shared by its commands.

Every AWS call goes through :meth:`Aws.call` and every docker command through
:meth:`Docker.run`, so a dry run reports each of them (one JSON line) and makes none.
In a dry run nothing is looked up, so a "create or reuse" step reports both its lookup
and its create: the lines are every call the deploy could make. Later steps are fed
placeholders (``<account-id>``) where a real run would use an answer.

The endpoint is the AWS SDK's own: ``AWS_ENDPOINT_URL`` (an emulator) or AWS's.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

#: Receives a dry run's lines, one per AWS call or docker command.
Emit = Callable[[str], None]
Response = dict[str, Any]

ACCOUNT_PLACEHOLDER = "<account-id>"
ECS_TASKS = "ecs-tasks.amazonaws.com"


class DeployError(RuntimeError):
    """A deploy step failed; the message is the one-line reason."""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def call_line(service: str, operation: str, params: Mapping[str, Any]) -> str:
    api_name = "".join(part.capitalize() for part in operation.split("_"))
    return json.dumps({"service": service, "operation": api_name, "params": params}, default=str)


@dataclass
class Aws:
    region: str
    dry_run: bool
    emit: Emit
    _clients: dict[str, Any] = field(default_factory=dict, init=False)

    def call(
        self,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        placeholder: Response | None = None,
    ) -> Response:
        """``operation`` of boto3's ``service`` client; in a dry run, ``placeholder``."""
        if self.dry_run:
            self.emit(call_line(service, operation, params))
            return placeholder or {}
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        response: Response = getattr(self._clients[service], operation)(**params)
        return response


@dataclass
class Docker:
    dry_run: bool
    emit: Emit

    def run(self, args: Sequence[str], stdin: str | None = None, shown_stdin: str = "") -> None:
        """``docker args``; its output goes to ours. ``shown_stdin`` stands for a secret."""
        command = ["docker", *args]
        if self.dry_run:
            line: dict[str, Any] = {"command": command}
            if stdin is not None:
                line["stdin"] = shown_stdin
            self.emit(json.dumps(line))
            return
        done = subprocess.run(command, input=stdin, text=True, check=False)
        if done.returncode != 0:
            raise DeployError(f"docker {args[0]} failed with exit code {done.returncode}")


def docker_engine() -> str | None:
    """None when a Docker engine answers; else why not."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 30 s"
    return None if info.returncode == 0 else f"`docker info` exited {info.returncode}"


def arn_account(arn: str) -> tuple[str, str]:
    """(partition, account id) of an ARN."""
    parts = arn.split(":")
    return parts[1], parts[4]


# --- pre-provisioned resources: checked, never created ----------------------------------


def require_cluster(aws: Aws, name: str) -> None:
    found = aws.call(
        "ecs", "describe_clusters", {"clusters": [name]}, {"clusters": [{"status": "ACTIVE"}]}
    )
    if not any(c.get("status") == "ACTIVE" for c in found.get("clusters", [])):
        raise DeployError(f"ECS cluster {name} is not active in {aws.region}")


def require_bucket(aws: Aws, name: str) -> None:
    try:
        aws.call("s3", "head_bucket", {"Bucket": name})
    except ClientError as exc:
        raise DeployError(f"S3 bucket {name} is not reachable: {error_code(exc)}") from exc


# --- ECR and Docker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    uri: str
    arn: str
    created: bool


def ensure_repository(aws: Aws, name: str) -> Repository:
    try:
        found = aws.call("ecr", "describe_repositories", {"repositoryNames": [name]})
    except ClientError as exc:
        if error_code(exc) != "RepositoryNotFoundException":
            raise
        found = {}
    if found.get("repositories"):
        repo = found["repositories"][0]
        return Repository(repo["repositoryUri"], repo["repositoryArn"], created=False)
    host = f"{ACCOUNT_PLACEHOLDER}.dkr.ecr.{aws.region}.amazonaws.com"
    placeholder = {
        "repositoryUri": f"{host}/{name}",
        "repositoryArn": f"arn:aws:ecr:{aws.region}:{ACCOUNT_PLACEHOLDER}:repository/{name}",
    }
    repo = aws.call(
        "ecr",
        "create_repository",
        {"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": True}},
        {"repository": placeholder},
    )["repository"]
    return Repository(repo["repositoryUri"], repo["repositoryArn"], created=True)


def registry_login(aws: Aws, docker: Docker, repository_uri: str) -> None:
    """``docker login`` to ECR, the token passed on stdin (never on a command line)."""
    host = repository_uri.split("/", 1)[0]
    token = base64.b64encode(b"AWS:<token>").decode()
    placeholder = {"authorizationData": [{"authorizationToken": token, "proxyEndpoint": host}]}
    data = aws.call("ecr", "get_authorization_token", {}, placeholder)["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    docker.run(
        ["login", "--username", user, "--password-stdin", data["proxyEndpoint"]],
        stdin=password,
        shown_stdin="<ECR authorization token>",
    )


def build_and_push(docker: Docker, image: str, dockerfile: str, context: str) -> None:
    # Fargate runs the X86_64 platform the task definition names, whatever builds it.
    docker.run(["build", "--platform", "linux/amd64", "-f", dockerfile, "-t", image, context])
    docker.run(["push", image])


# --- CloudWatch Logs and IAM ------------------------------------------------------------


def ensure_log_group(aws: Aws, name: str, retention_days: int = 30) -> bool:
    """True when the group was created (an existing one is left as it is)."""
    found = aws.call("logs", "describe_log_groups", {"logGroupNamePrefix": name})
    if any(g["logGroupName"] == name for g in found.get("logGroups", [])):
        return False
    aws.call("logs", "create_log_group", {"logGroupName": name})
    aws.call(
        "logs", "put_retention_policy", {"logGroupName": name, "retentionInDays": retention_days}
    )
    return True


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


def ensure_role(aws: Aws, name: str, policy_name: str, statements: Sequence[Any]) -> str:
    """The ARN of role ``name`` (created when missing) that ECS tasks assume, its inline
    policy ``policy_name`` set to ``statements`` on every deploy (so it never drifts)."""
    try:
        found = aws.call("iam", "get_role", {"RoleName": name})
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        found = {}
    if "Role" in found:
        arn = str(found["Role"]["Arn"])
    else:
        trust = {"Effect": "Allow", "Principal": {"Service": ECS_TASKS}, "Action": "sts:AssumeRole"}
        placeholder = {"Role": {"Arn": f"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:role/{name}"}}
        created = aws.call(
            "iam",
            "create_role",
            {"RoleName": name, "AssumeRolePolicyDocument": policy([trust])},
            placeholder,
        )
        arn = str(created["Role"]["Arn"])
    aws.call(
        "iam",
        "put_role_policy",
        {"RoleName": name, "PolicyName": policy_name, "PolicyDocument": policy(statements)},
    )
    return arn


# --- ECS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    family: str
    container: str
    image: str
    cpu: int
    memory: int
    environment: Mapping[str, str]
    execution_role_arn: str
    task_role_arn: str
    log_group: str
    stream_prefix: str = "ecs"

    def log_stream(self, task_arn: str) -> str:
        """The awslogs driver's stream for ``task_arn``: prefix/container/task id."""
        return f"{self.stream_prefix}/{self.container}/{task_arn.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Network:
    subnets: Sequence[str]
    security_groups: Sequence[str]
    # A public IP reaches ECR and the internet from a public subnet without a NAT.
    assign_public_ip: str = "ENABLED"


def register_task_definition(aws: Aws, spec: TaskSpec) -> str:
    container = {
        "name": spec.container,
        "image": spec.image,
        "essential": True,
        # Fargate takes the task's memory; the container's equals it because moto's
        # RunTask fails (500) on a container without one, and AWS accepts both.
        "memory": spec.memory,
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": spec.log_group,
                "awslogs-region": aws.region,
                "awslogs-stream-prefix": spec.stream_prefix,
            },
        },
    }
    params = {
        "family": spec.family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "executionRoleArn": spec.execution_role_arn,
        "taskRoleArn": spec.task_role_arn,
        "containerDefinitions": [container],
    }
    arn = f"arn:aws:ecs:{aws.region}:{ACCOUNT_PLACEHOLDER}:task-definition/{spec.family}:1"
    registered = aws.call(
        "ecs", "register_task_definition", params, {"taskDefinition": {"taskDefinitionArn": arn}}
    )
    return str(registered["taskDefinition"]["taskDefinitionArn"])


def run_task(
    aws: Aws,
    cluster: str,
    task_definition_arn: str,
    network: Network,
    started_by: str,
    role_wait: float = 60.0,
) -> str:
    """The started task's ARN."""
    params = {
        "cluster": cluster,
        "taskDefinition": task_definition_arn,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": started_by,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(network.subnets),
                "securityGroups": list(network.security_groups),
                "assignPublicIp": network.assign_public_ip,
            }
        },
    }
    arn = f"arn:aws:ecs:{aws.region}:{ACCOUNT_PLACEHOLDER}:task/{cluster}/<task-id>"
    deadline = time.monotonic() + role_wait
    while True:
        try:
            started = aws.call("ecs", "run_task", params, {"tasks": [{"taskArn": arn}]})
            break
        except ClientError as exc:
            # IAM is eventually consistent: a role created seconds ago may not be
            # assumable by ECS yet.
            if "assume" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(5)
    if started.get("failures") or not started.get("tasks"):
        raise DeployError(f"ECS did not start the task: {started.get('failures')}")
    return str(started["tasks"][0]["taskArn"])


def wait_for_stop(
    aws: Aws,
    cluster: str,
    task_arn: str,
    timeout: float,
    poll: float,
    on_status: Callable[[str], None],
) -> Response:
    """The task once STOPPED (``on_status`` hears each new status); DeployError when it
    has not stopped within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = ""
    placeholder = {"tasks": [{"lastStatus": "STOPPED", "containers": []}]}
    while True:
        found = aws.call(
            "ecs", "describe_tasks", {"cluster": cluster, "tasks": [task_arn]}, placeholder
        )
        task: Response = found["tasks"][0] if found.get("tasks") else {}
        status = str(task.get("lastStatus", "MISSING"))
        if status != seen:
            on_status(status)
            seen = status
        if status == "STOPPED":
            return task
        if time.monotonic() >= deadline:
            raise DeployError(f"task {task_arn} did not stop within {timeout:g} s")
        time.sleep(poll)


def stop_task(aws: Aws, cluster: str, task_arn: str, reason: str) -> None:
    aws.call("ecs", "stop_task", {"cluster": cluster, "task": task_arn, "reason": reason})


def exit_code(task: Mapping[str, Any], container: str) -> int | None:
    """The container's exit code; None when it never ran (e.g. its image failed to pull)."""
    for described in task.get("containers", []):
        if described.get("name") == container and described.get("exitCode") is not None:
            return int(described["exitCode"])
    return None


def log_lines(
    aws: Aws, group: str, stream: str, settle: float = 0.0, poll: float = 1.0
) -> list[str]:
    """Every event of the stream, oldest first; waits up to ``settle`` seconds for the
    stream to appear, since the log driver's last events can land after the task stops."""
    deadline = time.monotonic() + settle
    while True:
        lines = _read_stream(aws, group, stream)
        if lines or aws.dry_run or time.monotonic() >= deadline:
            return lines
        time.sleep(poll)


def _read_stream(aws: Aws, group: str, stream: str) -> list[str]:
    lines: list[str] = []
    params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        try:
            page = aws.call("logs", "get_log_events", params)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return lines
            raise
        lines.extend(str(event["message"]) for event in page.get("events", []))
        token = page.get("nextForwardToken")
        # The last page hands back the token it was asked with.
        if not token or token == params.get("nextToken"):
            return lines
        params["nextToken"] = token
