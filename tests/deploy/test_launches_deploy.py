"""deploy/launches.sh, run whole against an AWS API emulator (moto's server, ECR, ECS,
IAM, CloudWatch Logs and S3 in this process).

Moto registers and "runs" a Fargate task but runs no container. The test plays that
missing runtime (:class:`FargateStandIn`): once the task is RUNNING in moto, it reads the
task definition the script registered, runs the real job (``python -m streams.launches``)
with that definition's environment, writes the job's output to the log stream the
definition names, and stops the task with the job's exit code. So the deploy's logs,
exit code and acceptance check all come from a real run of the job configured only
by what the script registered. No Docker engine is used: ``docker`` is a stub that
records its calls and says whether an "engine" answers.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from tests.support.deploy import (
    BUCKET,
    CLUSTER,
    LOG_GROUP,
    REGION,
    REPOSITORY,
    ROOT,
    SECURITY_GROUP,
    SUBNET,
    TAG,
    DockerStub,
    FargateStandIn,
    client,
    deploy,
    task_definition,
)

pytestmark = pytest.mark.integration


def test_deploy_runs_the_job_prints_its_logs_and_passes_the_check(
    account: str, docker: DockerStub, spacex_api: str
) -> None:
    """A deploy creates the repository, registers a Fargate task definition the job runs
    with, starts it in the seed's subnet and security group, prints the job's logs and
    exit code 0, and the acceptance check passes against the object the job wrote."""
    runtime = FargateStandIn(account)
    runtime.start()
    done = deploy(account, docker, SPACEX_API_URL=f"{spacex_api}/v4/launches")
    runtime.finish(done)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout

    assert f"ECR repository {REPOSITORY} created" in out
    [repo] = client(account, "ecr").describe_repositories()["repositories"]
    assert "no Docker engine is reachable" in out and "skipping the build and push" in out
    assert docker.calls() == ["info"]

    definition = task_definition(account)
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    [container] = definition["containerDefinitions"]
    assert container["image"] == f"{repo['repositoryUri']}:{TAG}"
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": LOG_GROUP,
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "ecs",
        },
    }
    # What the job ran with is exactly what was registered: no endpoint, no secret.
    assert runtime.environment == {
        "S3_BUCKET": BUCKET,
        "S3_KEY": "launches.parquet",
        "AWS_REGION": REGION,
        "SPACEX_API_URL": f"{spacex_api}/v4/launches",
    }
    task_role = definition["taskRoleArn"].rsplit("/", 1)[-1]
    iam = client(account, "iam")
    [name] = iam.list_role_policies(RoleName=task_role)["PolicyNames"]
    statements = iam.get_role_policy(RoleName=task_role, PolicyName=name)["PolicyDocument"]
    resources = {s["Resource"] for s in statements["Statement"]}
    assert resources == {f"arn:aws:s3:::{BUCKET}/launches.parquet", f"arn:aws:s3:::{BUCKET}"}

    ecs, ec2 = client(account, "ecs"), client(account, "ec2")
    [arn] = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] == SUBNET
    [eni] = ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert [g["GroupId"] for g in eni["Groups"]] == [SECURITY_GROUP]

    assert runtime.exit_code == 0 and runtime.lines
    assert all(f"  | {line}" in out for line in runtime.lines)
    assert "exit code: 0" in out
    assert "acceptance check passed" in out
    check = out.split("deploy: acceptance check: ", 1)[1]
    assert re.search(r"^\d+ passed in ", check, re.MULTILINE), check
    assert "failed" not in check and "error" not in check
    head = client(account, "s3").head_object(Bucket=BUCKET, Key="launches.parquet")
    assert head["ContentLength"] > 0


def test_failed_job_fails_the_deploy_with_its_logs_and_no_check(
    account: str, docker: DockerStub, spacex_api: str
) -> None:
    """A job that exits 1 (its API answers 404) fails the deploy, which prints the job's
    logs and exit code and runs no acceptance check; an existing repository is reused."""
    client(account, "ecr").create_repository(repositoryName=REPOSITORY)
    runtime = FargateStandIn(account)
    runtime.start()
    done = deploy(account, docker, SPACEX_API_URL=f"{spacex_api}/v4/gone")
    runtime.finish(done)

    assert runtime.exit_code == 1
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"ECR repository {REPOSITORY} reused" in done.stdout
    assert any(line.startswith("launches: failed:") for line in runtime.lines)
    assert all(f"  | {line}" in done.stdout for line in runtime.lines)
    assert "exit code: 1" in done.stdout
    assert "deploy: failed: the job exited 1" in done.stderr
    assert "acceptance check" not in done.stdout


def test_docker_engine_logs_in_builds_and_pushes_the_task_image(
    account: str, docker: DockerStub
) -> None:
    """With a Docker engine the deploy logs in to ECR with the token on stdin, builds
    deploy/launches/Dockerfile from the repository root and pushes the image the task
    definition names."""
    runtime = FargateStandIn(account, command=["echo", "stand-in job"])
    runtime.start()
    done = deploy(account, docker, "--skip-check", engine=True)
    runtime.finish(done)
    assert done.returncode == 0, done.stdout + done.stderr

    image = task_definition(account)["containerDefinitions"][0]["image"]
    token = client(account, "ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    assert docker.calls() == [
        "info",
        f"login --username {user} --password-stdin {token['proxyEndpoint']}",
        f"stdin {password}",
        f"build --platform linux/amd64 -f {ROOT}/deploy/launches/Dockerfile -t {image} {ROOT}",
        f"push {image}",
    ]
    assert password not in done.stdout + done.stderr
    assert "acceptance check skipped" in done.stdout


def test_task_that_never_stops_is_stopped_and_fails_the_deploy(
    account: str, docker: DockerStub
) -> None:
    """A task still running at the deploy's timeout is stopped, and the deploy exits 3
    saying so, without sleeping a poll interval past the timeout."""
    started = time.monotonic()
    done = deploy(account, docker, "--timeout", "1", "--poll-seconds", "60")
    assert time.monotonic() - started < 20  # not the 60 s poll
    assert done.returncode == 3, done.stdout + done.stderr
    assert "did not stop within 1 s" in done.stderr
    ecs = client(account, "ecs")
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(cluster=CLUSTER)["taskArns"])[
        "tasks"
    ]
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedReason"] == "deploy gave up waiting for it to stop"


def test_dry_run_prints_every_call_and_makes_none(account: str, docker: DockerStub) -> None:
    """--dry-run prints each AWS call and docker command as one JSON line, with no
    credentials, and neither creates anything in the account nor runs docker."""
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "",  # empty: boto3 finds no key
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = deploy(account, docker, "--dry-run", engine=True, **no_credentials)
    assert done.returncode == 0, done.stdout + done.stderr

    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    calls = [f"{c['service']}:{c['operation']}" for c in lines if "service" in c]
    assert calls == [
        "ecs:DescribeClusters",
        "s3:HeadBucket",
        "ecr:DescribeRepositories",
        "ecr:CreateRepository",
        "ecr:GetAuthorizationToken",
        "logs:DescribeLogGroups",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        *[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:ListRolePolicies",
        ]
        * 2,
        "ecs:RegisterTaskDefinition",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "logs:GetLogEvents",
    ]
    # StopTask is made only on the timeout and interrupt paths, and says so.
    [stop] = [c for c in lines if c.get("operation") == "StopTask"]
    assert stop["params"]["reason"] == (
        "<only if the task outlives --timeout or the deploy is interrupted>"
    )
    commands = [c["command"] for c in lines if "command" in c]
    assert [c[1] if c[0] == "docker" else c[2:4] for c in commands] == [
        "login",
        "build",
        "push",
        ["pytest", "-q"],
    ]
    [run_task] = [c for c in lines if c.get("operation") == "RunTask"]
    network = run_task["params"]["networkConfiguration"]["awsvpcConfiguration"]
    assert network["subnets"] == [SUBNET] and network["securityGroups"] == [SECURITY_GROUP]

    assert docker.calls() == []
    assert client(account, "ecr").describe_repositories()["repositories"] == []
    assert client(account, "ecs").list_task_definitions()["taskDefinitionArns"] == []
    assert client(account, "iam").list_roles()["Roles"] == []
