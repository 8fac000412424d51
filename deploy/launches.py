"""Deploy the SpaceX launches job to ECS Fargate, run it once, and check what it wrote.

    deploy/launches.sh [--dry-run] [--skip-check] [--image-tag TAG] [--region REGION] ...

Checks the pre-provisioned cluster and bucket; creates or reuses the ECR repository;
logs in, builds and pushes the image (skipped, and said so, when no Docker engine
answers); creates or reuses the log group and the execution and task roles; registers
the task definition; runs the task; waits for it to stop; prints its logs and exit
code; then runs the acceptance check, deploy/checks/test_launches_object.py, against
the bucket. Every name defaults to the challenge's; a flag, or its variable, sets it.
``--dry-run`` prints every AWS call and docker command, one JSON line
each, and makes none.

Exit codes: 0 the job and the check passed; 1 the job failed (its exit code was not 0,
or it never ran) or the check failed; 2 an invalid setting; 3 a deploy step failed (an
AWS or docker error, or the task did not stop in time).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy import aws
from deploy.aws import DeployError
from streams.launches.settings import DEFAULT_API_URL

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "deploy/launches/Dockerfile"
CHECK = "deploy/checks/test_launches_object.py"
CONTAINER = "launches"
OK, FAILED, INVALID, STEP_FAILED = 0, 1, 2, 3
#: The awslogs driver can deliver a task's last events a moment after it stopped.
LOGS_SETTLE_SECONDS = 10.0

# (flag, variable, default, help): the challenge's pre-provisioned names.
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--cluster", "ECS_CLUSTER", "candidate-test-cluster", "the ECS cluster (pre-provisioned)"),
    ("--repository", "ECR_REPOSITORY", "candidate-test-repo", "the ECR repository"),
    ("--bucket", "S3_BUCKET", "candidate-test-bucket2k25", "the bucket the job writes"),
    ("--key", "S3_KEY", "launches.parquet", "the object's key"),
    ("--log-group", "ECS_LOG_GROUP", "/ecs/candidate-test-task", "the CloudWatch log group"),
    ("--family", "ECS_TASK_FAMILY", "candidate-test-task", "the task definition's family"),
    ("--subnets", "ECS_SUBNETS", "subnet-048995eadd3bbf8eb", "the task's subnets, comma-separated"),
    (
        "--security-groups",
        "ECS_SECURITY_GROUPS",
        "sg-0917ce879ec223119",
        "the task's security groups, comma-separated",
    ),
    ("--assign-public-ip", "ECS_ASSIGN_PUBLIC_IP", "ENABLED", "ENABLED or DISABLED"),
    (
        "--execution-role",
        "ECS_EXECUTION_ROLE",
        "candidate-test-task-execution-role",
        "the role ECS pulls and logs with: a name (created or updated) or an ARN (used as is)",
    ),
    (
        "--task-role",
        "ECS_TASK_ROLE",
        "candidate-test-task-role",
        "the role the job runs as: a name (created or updated) or an ARN (used as is)",
    ),
    ("--spacex-api-url", "SPACEX_API_URL", DEFAULT_API_URL, "the launches the job extracts"),
    ("--cpu", "ECS_TASK_CPU", "256", "the task's CPU units"),
    ("--memory", "ECS_TASK_MEMORY", "512", "the task's memory (MiB)"),
    ("--timeout", "DEPLOY_TIMEOUT_SECONDS", "900", "longest wait for the task to stop (s)"),
    ("--poll-seconds", "DEPLOY_POLL_SECONDS", "5", "between two looks at the task (s)"),
)


@dataclass(frozen=True)
class Config:
    region: str
    image_tag: str
    dry_run: bool
    skip_check: bool
    values: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def number(self, name: str) -> float:
        return float(self.values[name])

    def listed(self, name: str) -> list[str]:
        return [item.strip() for item in self.values[name].split(",") if item.strip()]


class Output:
    """The command's output: what it does, a dry run's calls, the job's logs, errors."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def call(self, line: str) -> None:
        self.line(line)

    def step(self, message: str) -> None:
        if not self.dry_run:  # a dry run looks nothing up: it has no outcome to tell
            self.line(f"deploy: {message}")

    def note(self, message: str) -> None:
        self.line(f"deploy: {message}")

    def error(self, message: str) -> None:
        sys.stderr.write(f"deploy: failed: {' '.join(message.split())}\n")
        sys.stderr.flush()

    @staticmethod
    def line(text: str) -> None:
        # Flushed: a subprocess (docker, the check) writes to the same stdout next.
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    out = Output(config.dry_run)
    try:
        return deploy(config, out)
    except DeployError as exc:
        out.error(str(exc))
    except (ClientError, BotoCoreError) as exc:
        out.error(f"AWS: {exc}")
    return STEP_FAILED


def parse(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="deploy/launches.sh",
        description=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, variable, default, text in OPTIONS:
        parser.add_argument(
            flag,
            dest=dest(flag),
            default=os.environ.get(variable, default),
            help=f"{text} [{variable}, {default}]",
        )
    parser.add_argument(
        "--region", help="[AWS_REGION, else AWS_DEFAULT_REGION, else the profile's]"
    )
    parser.add_argument(
        "--image-tag", help="[IMAGE_TAG, else the git short sha, else a UTC timestamp]"
    )
    parser.add_argument("--dry-run", action="store_true", help="print every call, make none")
    parser.add_argument("--skip-check", action="store_true", help="do not run the acceptance check")
    args = parser.parse_args(argv)
    values = {dest(flag): str(getattr(args, dest(flag))) for flag, *_ in OPTIONS}
    region = (
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or boto3.Session().region_name
    )
    if not region:
        # No default: the cluster, subnet and security group exist in one region only.
        parser.error("no AWS region: pass --region or set AWS_REGION")
    for name in ("cpu", "memory", "timeout", "poll_seconds"):
        try:
            positive = float(values[name]) > 0
        except ValueError:
            positive = False
        if not positive:
            parser.error(f"--{dest_flag(name)} must be a positive number, not {values[name]!r}")
    if values["assign_public_ip"] not in ("ENABLED", "DISABLED"):
        parser.error("--assign-public-ip must be ENABLED or DISABLED")
    tag = args.image_tag or os.environ.get("IMAGE_TAG") or default_image_tag()
    return Config(region, tag, args.dry_run, args.skip_check, values)


def dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def dest_flag(name: str) -> str:
    return name.replace("_", "-")


def default_image_tag() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        sha = None
    if sha is not None and sha.returncode == 0 and sha.stdout.strip():
        return sha.stdout.strip()
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def deploy(config: Config, out: Output) -> int:
    api = aws.Aws(config.region, config.dry_run, out.call)
    docker = aws.Docker(config.dry_run, out.call)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    out.note(
        f"{'dry run: ' if config.dry_run else ''}launches job to {config['cluster']} in "
        f"{config.region}{f' (endpoint {endpoint})' if endpoint else ''}"
    )
    aws.require_cluster(api, config["cluster"])
    aws.require_bucket(api, config["bucket"])

    repo = aws.ensure_repository(api, config["repository"])
    out.step(f"ECR repository {config['repository']} {'created' if repo.created else 'reused'}")
    image = f"{repo.uri}:{config.image_tag}"
    why_not = None if config.dry_run else aws.docker_engine()
    if why_not:
        out.note(
            f"no Docker engine is reachable ({why_not}): skipping the build and push; "
            f"the task runs {image}, which must already be in the repository"
        )
    else:
        aws.registry_login(api, docker, repo.uri)
        aws.build_and_push(docker, image, str(ROOT / DOCKERFILE), str(ROOT))
        out.step(f"pushed {image}")

    created = aws.ensure_log_group(api, config["log_group"])
    out.step(f"log group {config['log_group']} {'created' if created else 'reused'}")
    partition, account = aws.arn_account(repo.arn)
    log_group_arn = (
        f"arn:{partition}:logs:{config.region}:{account}:log-group:{config['log_group']}"
    )
    execution_role = role(
        api,
        config["execution_role"],
        "pull-image-write-logs",
        aws.execution_statements(repo.arn, log_group_arn),
    )
    task_role = role(
        api,
        config["task_role"],
        "launches-object",
        aws.object_statements(partition, config["bucket"], config["key"]),
    )
    out.step(f"roles: execution {execution_role}, task {task_role}")

    spec = aws.TaskSpec(
        family=config["family"],
        container=CONTAINER,
        image=image,
        cpu=int(config.number("cpu")),
        memory=int(config.number("memory")),
        environment=job_environment(config),
        execution_role_arn=execution_role,
        task_role_arn=task_role,
        log_group=config["log_group"],
    )
    definition = aws.register_task_definition(api, spec)
    out.step(f"registered {definition}")
    network = aws.Network(
        config.listed("subnets"), config.listed("security_groups"), config["assign_public_ip"]
    )
    task_arn = aws.run_task(api, config["cluster"], definition, network, "deploy/launches")
    out.step(
        f"started {task_arn} in subnets {', '.join(network.subnets)}, "
        f"security groups {', '.join(network.security_groups)}"
    )
    try:
        task = aws.wait_for_stop(
            api,
            config["cluster"],
            task_arn,
            config.number("timeout"),
            config.number("poll_seconds"),
            lambda status: out.step(f"task {status}"),
        )
    except DeployError:
        aws.stop_task(api, config["cluster"], task_arn, "deploy gave up waiting for it to stop")
        print_logs(
            out, spec, task_arn, aws.log_lines(api, spec.log_group, spec.log_stream(task_arn))
        )
        raise
    code = aws.exit_code(task, CONTAINER)
    settle = LOGS_SETTLE_SECONDS if code is not None else 0.0
    print_logs(
        out, spec, task_arn, aws.log_lines(api, spec.log_group, spec.log_stream(task_arn), settle)
    )
    if config.dry_run:
        return acceptance_check(config, out)
    reason = task.get("stoppedReason") or "no reason given"
    out.note(f"exit code: {'none' if code is None else code} (stopped: {reason})")
    if code != 0:
        out.error(f"the job {'never ran' if code is None else f'exited {code}'}: {reason}")
        return FAILED
    if config.skip_check:
        out.note("acceptance check skipped (--skip-check)")
        return OK
    return acceptance_check(config, out)


def role(api: aws.Aws, name_or_arn: str, policy_name: str, statements: list[dict[str, Any]]) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn  # for a deployer not allowed to manage IAM: used as given
    return aws.ensure_role(api, name_or_arn, policy_name, statements)


def job_environment(config: Config) -> dict[str, str]:
    """The job's whole configuration. Never the endpoint: on Fargate it talks to AWS."""
    return {
        "S3_BUCKET": config["bucket"],
        "S3_KEY": config["key"],
        "AWS_REGION": config.region,
        "SPACEX_API_URL": config["spacex_api_url"],
    }


def print_logs(out: Output, spec: aws.TaskSpec, task_arn: str, lines: list[str]) -> None:
    if out.dry_run:
        return
    out.note(f"logs of {spec.log_group} {spec.log_stream(task_arn)}: {len(lines)} events")
    for line in lines:
        out.line(f"  | {line}")


def acceptance_check(config: Config, out: Output) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CHECK]
    env = job_environment(config)
    if config.dry_run:
        out.call(json.dumps({"command": command, "env": env}))
        return OK
    if not (ROOT / CHECK).is_file():
        out.error(f"the acceptance check {CHECK} is missing")
        return FAILED
    out.note(f"acceptance check: {shlex.join(command)}")
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, check=False)
    if done.returncode != 0:
        out.error(f"the acceptance check failed (pytest exit code {done.returncode})")
        return FAILED
    out.note("acceptance check passed")
    return OK


if __name__ == "__main__":
    sys.exit(main())
