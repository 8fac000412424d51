"""Deploy the SpaceX launches job to ECS Fargate, run it once, and check what it wrote.
This module is the command: its entry point, the deploy's flow, and its handling of
SIGINT and SIGTERM; its settings are read and checked in deploy/launches_settings.py.

    deploy/launches.sh [--dry-run] [--skip-check] [--image-tag TAG] [--region REGION] ...

Checks the pre-provisioned cluster and bucket; creates or reuses the ECR repository;
logs in, builds and pushes the image (skipped, and said so, when no Docker engine
answers); creates or reuses the log group and the execution and task roles; registers
the task definition; runs the task; waits for it to stop; prints its logs and exit
code; then runs the acceptance check, deploy/checks/test_launches_object.py, against
the bucket. Every name defaults to the challenge's; a flag, or its variable, sets it.
``--dry-run`` prints every AWS call and docker command, one JSON line
each, and makes none.

Every setting is checked before the first AWS call, the job's own (bucket, key, API
URL) by the job's settings class. An empty variable counts as unset.

Exit codes: 0 the job and the check passed; 1 the job failed (its exit code was not 0,
or it never ran) or the check failed; 2 an invalid setting; 3 a deploy step failed (an
AWS or docker error, the task did not stop in time, or the deploy was interrupted by
SIGINT or SIGTERM: a started task is then stopped).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from deploy import aws, ecs, iam
from deploy.aws import DeployError
from deploy.command import run_deploy
from deploy.launches_settings import ROOT, Config, job_environment, parse
from deploy.output import (
    FAILED,
    OK,
    Output,
    ignore_interrupts,
)

DOCKERFILE = "deploy/launches/Dockerfile"
CHECK = "deploy/checks/test_launches_object.py"
CONTAINER = "launches"
#: The awslogs driver can deliver a task's last events a moment after it stopped.
LOGS_SETTLE_SECONDS = 10.0
TIMED_OUT = "deploy gave up waiting for it to stop"
INTERRUPTED = "deploy was interrupted"
#: A dry run's StopTask: made only on these paths.
STOP_CONDITION = "<only if the task outlives --timeout or the deploy is interrupted>"


def main(argv: Sequence[str] | None = None) -> int:
    return run_deploy(argv, __doc__.split("\n\n", 2)[2], parse, deploy)


def deploy(config: Config, out: Output) -> int:
    api = aws.Aws(config.region, config.dry_run, out.call)
    docker = aws.Docker(config.dry_run, out.call)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    out.note(
        f"{'dry run: ' if config.dry_run else ''}launches job to {config['cluster']} in "
        f"{config.region}{f' (endpoint {endpoint})' if endpoint else ''}"
    )
    ecs.require_cluster(api, config["cluster"])
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
        out,
        config["execution_role"],
        "pull-image-write-logs",
        iam.execution_statements(repo.arn, log_group_arn),
    )
    task_role = role(
        api,
        out,
        config["task_role"],
        "launches-object",
        iam.object_statements(partition, config["bucket"], config["key"]),
    )
    out.step(f"roles: execution {execution_role}, task {task_role}")

    spec = ecs.TaskSpec(
        family=config["family"],
        container=CONTAINER,
        image=image,
        cpu=config.integer("cpu"),
        memory=config.integer("memory"),
        environment=job_environment(config),
        execution_role_arn=execution_role,
        task_role_arn=task_role,
        log_group=config["log_group"],
    )
    definition = ecs.register_task_definition(api, spec)
    out.step(f"registered {definition}")
    network = ecs.Network(
        config.listed("subnets"), config.listed("security_groups"), config["assign_public_ip"]
    )
    task_arn = ecs.run_task(api, config["cluster"], definition, network, "deploy/launches")
    try:
        out.step(
            f"started {task_arn} in subnets {', '.join(network.subnets)}, "
            f"security groups {', '.join(network.security_groups)}"
        )
        task = ecs.wait_for_stop(
            api,
            config["cluster"],
            task_arn,
            config.number("timeout"),
            config.number("poll_seconds"),
            lambda status: out.step(f"task {status}"),
        )
    except (DeployError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        if interrupted:
            ignore_interrupts()
        give_up(api, out, config["cluster"], spec, task_arn, interrupted)
        if interrupted:
            raise DeployError(f"interrupted; task {task_arn} stopped") from None
        raise
    if config.dry_run:
        ecs.stop_task(api, config["cluster"], task_arn, STOP_CONDITION)
    code = ecs.exit_code(task, CONTAINER)
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


def give_up(
    api: aws.Aws,
    out: Output,
    cluster: str,
    spec: ecs.TaskSpec,
    task_arn: str,
    interrupted: bool,
) -> None:
    """Stop the task the deploy no longer waits for, and print what it logged."""
    why = "interrupted" if interrupted else "timed out"
    try:
        ecs.stop_task(api, cluster, task_arn, INTERRUPTED if interrupted else TIMED_OUT)
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"{why}; task {task_arn} could not be stopped: {exc}") from exc
    try:
        lines = aws.log_lines(api, spec.log_group, spec.log_stream(task_arn))
    except (ClientError, BotoCoreError) as exc:
        out.warn(f"the task's logs could not be read: {exc}")
        return
    print_logs(out, spec, task_arn, lines)


def role(
    api: aws.Aws,
    out: Output,
    name_or_arn: str,
    policy_name: str,
    statements: list[dict[str, Any]],
) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn  # for a deployer not allowed to manage IAM: used as given
    return iam.ensure_role(api, name_or_arn, policy_name, statements, out.warn)


def print_logs(out: Output, spec: ecs.TaskSpec, task_arn: str, lines: list[str]) -> None:
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
