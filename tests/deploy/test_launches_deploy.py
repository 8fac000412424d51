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
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import moto.ec2.models.security_groups
import moto.ec2.models.subnets
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from tests.integration.s3_server import moto_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "launches.sh"
FIXTURE = ROOT / "tests" / "fixtures" / "launches" / "launches_v4_sample.json"
REGION = "eu-west-1"
CLUSTER = "candidate-test-cluster"
REPOSITORY = "candidate-test-repo"
BUCKET = "candidate-test-bucket2k25"
LOG_GROUP = "/ecs/candidate-test-task"
SUBNET = "subnet-048995eadd3bbf8eb"
SECURITY_GROUP = "sg-0917ce879ec223119"
TAG = "test-tag"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """Moto's server, its ECS tasks held RUNNING until the stand-in runtime stops them.

    By default moto moves a task one state on at each DescribeTasks, so a deploy that
    polls would see it STOPPED, exit code 0, without anything having run.
    """
    with moto_server() as endpoint:
        hold = {"progression": "manual", "times": 10**9}
        moto_api(
            endpoint,
            "state-manager/set-transition",
            {"model_name": "ecs::task", "transition": hold},
        )
        try:
            yield endpoint
        finally:
            moto_api(endpoint, "state-manager/unset-transition", {"model_name": "ecs::task"})


@pytest.fixture
def account(emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty emulated account holding what the challenge pre-provisions: the cluster,
    the bucket, the log group, and the subnet and security group under their own ids."""
    moto_api(emulator, "reset")
    client(emulator, "ecs").create_cluster(clusterName=CLUSTER)
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client(emulator, "logs").create_log_group(logGroupName=LOG_GROUP)
    ec2 = client(emulator, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # Moto's RunTask fails on an ENI in a VPC without DNS hostnames (as default VPCs have).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    # Moto draws every id at random: the seed's ids are pinned in its in-process backend.
    with monkeypatch.context() as pinned:
        pinned.setattr(moto.ec2.models.subnets, "random_subnet_id", lambda: SUBNET)
        pinned.setattr(
            moto.ec2.models.security_groups, "random_security_group_id", lambda: SECURITY_GROUP
        )
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")
        ec2.create_security_group(GroupName="launches", Description="launches", VpcId=vpc)
    return emulator


@pytest.fixture(scope="module")
def spacex_api() -> Iterator[str]:
    """The launches fixture at /v4/launches on 127.0.0.1; any other path answers 404."""
    body = FIXTURE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/v4/launches"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class DockerStub:
    bin: Path
    log: Path

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def docker(tmp_path: Path) -> DockerStub:
    """A `docker` command that records its arguments (and login's stdin); `docker info`
    exits DOCKER_STUB_INFO_EXIT: 0 for a reachable engine."""
    stub = DockerStub(tmp_path / "bin", tmp_path / "docker.log")
    stub.bin.mkdir()
    script = stub.bin / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$*" >> "$DOCKER_STUB_LOG"\n'
        'case "$1" in\n'
        '  info) exit "$DOCKER_STUB_INFO_EXIT" ;;\n'
        '  login) printf "stdin %s\\n" "$(cat)" >> "$DOCKER_STUB_LOG" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return stub


class FargateStandIn(threading.Thread):
    """The container runtime moto lacks, for the one task the deploy starts."""

    def __init__(self, endpoint: str, command: list[str] | None = None) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.command = command or [sys.executable, "-m", "streams.launches"]
        self.environment: dict[str, str] = {}
        self.lines: list[str] = []
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self.deploy_ended = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        ecs, logs = client(self.endpoint, "ecs"), client(self.endpoint, "logs")
        while not (arns := ecs.list_tasks(cluster=CLUSTER)["taskArns"]):
            if self.deploy_ended.wait(0.05):
                raise RuntimeError("the deploy ended without starting a task")
        [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
        assert task["lastStatus"] == "RUNNING"
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
        [container] = definition["taskDefinition"]["containerDefinitions"]
        self.environment = {e["name"]: e["value"] for e in container["environment"]}
        # On Fargate the endpoint is AWS's and the credentials the task role's.
        env = {"PATH": os.environ["PATH"], **self.environment, **CREDENTIALS}
        env["AWS_ENDPOINT_URL"] = self.endpoint
        job = subprocess.run(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # as the awslogs driver merges them
            text=True,
            timeout=60,
        )
        self.lines, self.exit_code = job.stdout.splitlines(), job.returncode
        options = container["logConfiguration"]["options"]
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        stream = f"{options['awslogs-stream-prefix']}/{container['name']}/{task_id}"
        logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": line} for i, line in enumerate(self.lines)]
        if events:
            logs.put_log_events(
                logGroupName=options["awslogs-group"], logStreamName=stream, logEvents=events
            )
        # No ECS API sets a container's exit code (ECS's agent reports it): it is set on
        # moto's backend object, which this server shares with the test's process.
        emulated = ecs_backends[DEFAULT_ACCOUNT_ID][REGION].tasks[CLUSTER][task["taskArn"]]
        emulated.containers[0].exitCode = job.returncode
        emulated.containers[0].last_status = "STOPPED"
        ecs.stop_task(
            cluster=CLUSTER, task=task["taskArn"], reason="Essential container in task exited"
        )

    def finish(self, deploy: subprocess.CompletedProcess[str]) -> None:
        """Raise what went wrong in the runtime, with the deploy's output."""
        self.deploy_ended.set()
        self.join(timeout=60)
        if self.error is not None or self.is_alive():
            output = deploy.stdout + deploy.stderr
            raise AssertionError(f"runtime: {self.error!r}\n{output}") from self.error


def deploy(
    endpoint: str, docker: DockerStub, *args: str, engine: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        # The machine's own AWS settings (a profile, keys) must not leak in.
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "IMAGE_TAG": TAG,  # not the git sha: no git run in the test
        "DEPLOY_POLL_SECONDS": "0.1",
        "PATH": f"{docker.bin}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_STUB_LOG": str(docker.log),
        "DOCKER_STUB_INFO_EXIT": "0" if engine else "1",
        **env,
    }
    return subprocess.run(
        [str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=120
    )


def task_definition(endpoint: str) -> dict[str, Any]:
    ecs = client(endpoint, "ecs")
    [arn] = ecs.list_task_definitions(familyPrefix="candidate-test-task")["taskDefinitionArns"]
    definition: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return definition


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
    saying so."""
    done = deploy(account, docker, "--timeout", "1")
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
        "iam:GetRole",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:GetRole",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "ecs:RegisterTaskDefinition",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "logs:GetLogEvents",
    ]
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
