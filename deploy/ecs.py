"""The ECS steps of a one-off Fargate job's deploy: the pre-provisioned cluster checked,
the task definition registered, the task run, waited for and stopped, its exit code.

Fargate's task sizes (:func:`fargate_size_error`) are here too, so a command can refuse
a size before any call. Every call goes through :meth:`deploy.aws.Aws.call` (a dry run
reports it and makes none).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import ACCOUNT_PLACEHOLDER, Aws, DeployError, Response, sleep_until

#: Fargate's (Linux) task sizes: each CPU value and the memory (MiB) it may have.
FARGATE_SIZES: dict[int, Sequence[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}


def fargate_size_error(cpu: int, memory: int) -> str | None:
    """None when Fargate runs a task of ``cpu`` units and ``memory`` MiB; else why not."""
    if cpu not in FARGATE_SIZES:
        return f"Fargate's CPU units are one of {', '.join(map(str, FARGATE_SIZES))}, not {cpu}"
    sizes = FARGATE_SIZES[cpu]
    if memory in sizes:
        return None
    if isinstance(sizes, range):
        allowed = f"{sizes.start} to {sizes[-1]} in steps of {sizes.step}"
    else:
        allowed = ", ".join(map(str, sizes))
    return f"Fargate's memory for {cpu} CPU units is {allowed} MiB, not {memory}"


# --- the pre-provisioned cluster: checked, never created ------------------------------


def require_cluster(aws: Aws, name: str) -> None:
    found = aws.call(
        "ecs", "describe_clusters", {"clusters": [name]}, {"clusters": [{"status": "ACTIVE"}]}
    )
    if not any(c.get("status") == "ACTIVE" for c in found.get("clusters", [])):
        raise DeployError(f"ECS cluster {name} is not active in {aws.region}")


# --- the task -------------------------------------------------------------------------


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
            sleep_until(deadline, 5)
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
        sleep_until(deadline, poll)


def stop_task(aws: Aws, cluster: str, task_arn: str, reason: str) -> None:
    aws.call("ecs", "stop_task", {"cluster": cluster, "task": task_arn, "reason": reason})


def exit_code(task: Mapping[str, Any], container: str) -> int | None:
    """The container's exit code; None when it never ran (e.g. its image failed to pull)."""
    for described in task.get("containers", []):
        if described.get("name") == container and described.get("exitCode") is not None:
            return int(described["exitCode"])
    return None
