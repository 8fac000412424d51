"""The AWS and Docker steps of a one-off ECS Fargate job's deploy, shared by its commands:
the AWS session (:class:`Aws`) and docker (:class:`Docker`) that record a dry run, the
deploy's errors, the bucket check, the ECR repository, login, build and push, and the
CloudWatch log group and its events. The ECS steps are in deploy/ecs.py, the IAM roles
in deploy/iam.py.

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


def sleep_until(deadline: float, seconds: float) -> None:
    """Sleep ``seconds``, but not past ``deadline`` (a time.monotonic() value)."""
    time.sleep(max(0.0, min(seconds, deadline - time.monotonic())))


def arn_account(arn: str) -> tuple[str, str]:
    """(partition, account id) of an ARN."""
    parts = arn.split(":")
    return parts[1], parts[4]


# --- the pre-provisioned bucket: checked, never created -------------------------------


def require_bucket(aws: Aws, name: str) -> None:
    try:
        aws.call("s3", "head_bucket", {"Bucket": name})
    except ClientError as exc:
        raise DeployError(f"S3 bucket {name} is not reachable: {error_code(exc)}") from exc


# --- ECR and Docker -------------------------------------------------------------------


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


def build_and_push(
    docker: Docker, image: str, dockerfile: str, context: str, target: str | None = None
) -> None:
    # Fargate runs the X86_64 platform the task definition names, whatever builds it.
    stage = ["--target", target] if target else []
    platform = ["--platform", "linux/amd64"]
    docker.run(["build", *platform, "-f", dockerfile, *stage, "-t", image, context])
    docker.run(["push", image])


# --- CloudWatch Logs ------------------------------------------------------------------


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
        sleep_until(deadline, poll)


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
