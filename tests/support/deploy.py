"""The emulated AWS account, stand-in Fargate runtime and docker stub that the tests of
deploy/launches.sh share (tests/deploy/test_launches_deploy*.py; its fixtures are
registered in tests/deploy/conftest.py).

Moto registers and "runs" a Fargate task but runs no container. The tests play that
missing runtime (:class:`FargateStandIn`): once the task is RUNNING in moto, it reads the
task definition the script registered, runs the real job (``python -m streams.launches``)
with that definition's environment, writes the job's output to the log stream the
definition names, and stops the task with the job's exit code. No Docker engine is used:
``docker`` is a stub that records its calls and says whether an "engine" answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import moto.ec2.models.security_groups
import moto.ec2.models.subnets
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from tests.integration.s3_server import moto_server
from tests.support.launches import PATH, SAMPLE, Reply, api

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "launches.sh"
FIXTURE = SAMPLE
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
    """The launches fixture at /v4/launches on 127.0.0.1 (any other path answers 404);
    yields the server's base URL."""
    with api(Reply(200, FIXTURE.read_bytes())) as served:
        yield served.url.removesuffix(PATH)


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
    return subprocess.run(
        [str(SCRIPT), *args],
        env=deploy_environment(endpoint, docker, engine=engine, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def deploy_environment(
    endpoint: str, docker: DockerStub, engine: bool = False, **env: str
) -> dict[str, str]:
    """The deploy's environment: the emulator's, dummy credentials, the docker stub."""
    return {
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


def task_definition(endpoint: str) -> dict[str, Any]:
    ecs = client(endpoint, "ecs")
    [arn] = ecs.list_task_definitions(familyPrefix="candidate-test-task")["taskDefinitionArns"]
    definition: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return definition
