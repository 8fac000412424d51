"""deploy/flowlogs.sh, run whole against an AWS API emulator (moto's server in this
process, on 127.0.0.1) with stand-ins for the two programs it drives.

``terraform`` is a stub on PATH (:data:`TERRAFORM_STUB`): it records its arguments and,
on ``apply``, creates in moto what infra/ would (the ECR repository on the targeted
apply; then the load balancer and its target group with a registered target, the ECS
cluster, task definitions and the three services) and prints those outputs on
``output -json``. ``docker`` is a stub too (:data:`DOCKER_STUB`): it records its calls,
says whether an "engine" answers, and on ``push`` puts the image's tag into moto's ECR.
Moto starts no task: a new service stays IN_PROGRESS with no task running, so the
tests play ECS's scheduler (:func:`roll_out`), completing or failing the rollout on
moto's in-process backend once the deploy has seen it in progress.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from deploy import flowlogs
from deploy.flowlogs_terraform import Terraform
from tests.support.deploy import CREDENTIALS, REGION, ROOT, client, moto_api

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "deploy" / "flowlogs.sh"
INFRA = ROOT / "infra"
TAG = "0a1b2c3"
NAME = "flowlogs"  # infra/'s `name` default: the repository, the cluster, the prefixes
SERVICES = {"reader": 1, "worker": 2, "dashboard": 1}  # desired tasks, as infra/ sets them
TARGET = "10.42.1.7"

TERRAFORM_STUB = """
import json, os, signal, sys, time

args = sys.argv[1:]
with open(os.environ["TF_STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
verb, rest = args[1], args[2:]
state = os.environ["TF_STUB_STATE"]
values = json.load(open(state)) if os.path.exists(state) else {}
if verb == "output":
    print(json.dumps({k: {"sensitive": False, "value": v} for k, v in values.items()}))
if verb != "apply":
    sys.exit(0)
targeted = any(a.startswith("-target=") for a in rest)
if not targeted and os.environ.get("TF_STUB_APPLY") == "fail":
    print("Error: creating ECS Service: AccessDeniedException", file=sys.stderr)
    sys.exit(1)
if not targeted and os.environ.get("TF_STUB_APPLY") == "hang":
    def stop(signum, frame):
        with open(os.environ["TF_STUB_LOG"], "a") as log:
            log.write(json.dumps(["signal", signal.Signals(signum).name]) + "\\n")
        print("Gracefully shutting down...", flush=True)
        sys.exit(1)
    signal.signal(signal.SIGINT, stop)
    print("aws_msk_cluster.kafka[0]: Still creating...", flush=True)
    time.sleep(60)
    sys.exit(2)

import boto3

os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])  # as terraform reads it
tag = next(a.split("=", 2)[2] for a in rest if a.startswith("-var=image_tag="))
name = "flowlogs"
ecr = boto3.client("ecr")
try:
    repo = ecr.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )["repository"]
except ecr.exceptions.RepositoryAlreadyExistsException:
    repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
url = repo["repositoryUri"]
if os.environ.get("TF_STUB_REGION"):
    url = url.replace(os.environ["AWS_REGION"], os.environ["TF_STUB_REGION"])
values["ecr_repository_url"] = url
if not targeted:
    ec2, elb, ecs = (boto3.client(s) for s in ("ec2", "elbv2", "ecs"))
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=zones[i])
        for i in range(2)
    ]
    balancer = elb.create_load_balancer(
        Name=f"{name}-dashboard", Subnets=[s["Subnet"]["SubnetId"] for s in subnets]
    )["LoadBalancers"][0]
    group = elb.create_target_group(
        Name=f"{name}-dashboard", Protocol="HTTP", Port=8050, VpcId=vpc, TargetType="ip",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    if os.environ.get("TF_STUB_TARGETS") != "0":
        elb.register_targets(TargetGroupArn=group, Targets=[{"Id": TARGET, "Port": 8050}])
    ecs.create_cluster(clusterName=name)
    services = {}
    for kind, count in SERVICES.items():
        definition = ecs.register_task_definition(
            family=f"{name}-{kind}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="512", memory="1024",
            containerDefinitions=[{"name": kind, "image": f"{url}:{tag}", "memory": 1024}],
        )["taskDefinition"]["taskDefinitionArn"]
        balancers = [
            {"targetGroupArn": group, "containerName": kind, "containerPort": 8050}
        ] if kind == "dashboard" else []
        ecs.create_service(
            cluster=name, serviceName=f"{name}-{kind}", taskDefinition=definition,
            desiredCount=count, launchType="FARGATE", loadBalancers=balancers,
        )
        services[kind] = f"{name}-{kind}"
    values.update(
        ecs_cluster=name, services=services, dashboard_url="http://" + balancer["DNSName"]
    )
json.dump(values, open(state, "w"))
"""

DOCKER_STUB = """
import json, os, sys

args = sys.argv[1:]
with open(os.environ["DOCKER_STUB_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
    if args[0] == "info":
        sys.exit(int(os.environ["DOCKER_STUB_INFO_EXIT"]))
    if args[0] == "login":
        log.write("stdin " + sys.stdin.read() + "\\n")
if args[0] == "push":
    import boto3

    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])

    repository, tag = args[1].split("/", 1)[1].rsplit(":", 1)
    config = {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1,
        "digest": "sha256:" + tag.encode().hex().ljust(64, "0")[:64],  # one image a tag
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": config,
        "layers": [],
    }
    boto3.client("ecr").put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
    )
"""


@dataclass
class Tools:
    """The stubs' directory (first on PATH) and what they record."""

    bin: Path
    terraform_log: Path
    state: Path
    docker_log: Path

    def terraform_calls(self) -> list[list[str]]:
        text = self.terraform_log.read_text() if self.terraform_log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def docker_calls(self) -> list[str]:
        return self.docker_log.read_text().splitlines() if self.docker_log.exists() else []


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    """The terraform and docker stand-ins, in a directory of their own."""
    found = Tools(tmp_path / "bin", tmp_path / "tf.log", tmp_path / "tf.json", tmp_path / "d.log")
    found.bin.mkdir()
    for name, body in (("terraform", TERRAFORM_STUB), ("docker", DOCKER_STUB)):
        stub = found.bin / name
        constants = f"SERVICES = {SERVICES!r}\nTARGET = {TARGET!r}\n"
        stub.write_text(f"#!{sys.executable}\n{constants}{body}")
        stub.chmod(0o755)
    return found


@pytest.fixture
def aws(emulator: str) -> str:
    """Moto's server, emptied: an account where nothing of the platform exists yet."""
    moto_api(emulator, "reset")
    return emulator


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


#: Hears each line the deploy prints on stdout, with the running deploy.
OnLine = Callable[[str, "subprocess.Popen[str]"], None]


def deploy(
    endpoint: str, tools: Tools, *args: str, on_line: OnLine | None = None, **env: str
) -> Done:
    """deploy/flowlogs.sh ``args``, its stdout read line by line as it goes."""
    environment = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "DEPLOY_", "TF_", "DOCKER_"))
            and k not in ("TERRAFORM", "IMAGE_TAG")
        },
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "IMAGE_TAG": TAG,  # not the git commit: no git runs in the tests
        "DEPLOY_POLL_SECONDS": "0.1",
        "DEPLOY_TIMEOUT_SECONDS": "30",
        "PATH": f"{tools.bin}{os.pathsep}{os.environ['PATH']}",
        "TF_STUB_LOG": str(tools.terraform_log),
        "TF_STUB_STATE": str(tools.state),
        "DOCKER_STUB_LOG": str(tools.docker_log),
        "DOCKER_STUB_INFO_EXIT": "0",
        **env,
    }
    with tempfile.TemporaryFile("w+") as stderr:
        running = subprocess.Popen(
            [str(SCRIPT), *args], env=environment, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        lines = []
        try:
            assert running.stdout is not None
            for line in running.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line, running)
            running.wait(timeout=60)
        finally:
            running.kill()
        stderr.seek(0)
        return Done(running.returncode, "".join(lines), stderr.read())


def roll_out(state: str = "COMPLETED") -> OnLine:
    """ECS's scheduler, played on moto's backend: once the deploy has seen a rollout in
    progress, every service of the cluster ends it in ``state``."""
    done: list[str] = []

    def on_line(line: str, running: subprocess.Popen[str]) -> None:
        if "rollout IN_PROGRESS" not in line or done:
            return
        done.append(line)
        backend = ecs_backends[DEFAULT_ACCOUNT_ID][REGION]
        for key, service in backend.services.items():
            if key.startswith(f"{NAME}:"):
                running_count = service.desired_count if state == "COMPLETED" else 0
                service.running_count, service.pending_count = running_count, 0
                service.deployments[0].update(
                    runningCount=running_count,
                    pendingCount=0,
                    rolloutState=state,
                    rolloutStateReason=f"ECS deployment {state.lower()} (the test's scheduler)",
                )

    return on_line


def repository_uri(endpoint: str) -> str:
    [repo] = client(endpoint, "ecr").describe_repositories()["repositories"]
    return str(repo["repositoryUri"])


def tags_in_ecr(endpoint: str) -> set[str]:
    images = client(endpoint, "ecr").describe_images(repositoryName=NAME)["imageDetails"]
    return {tag for image in images for tag in image.get("imageTags", [])}


def push_beforehand(endpoint: str, tools: Tools, *tags: str) -> None:
    """The repository, and ``tags`` in it, as an earlier deploy (or CI) left them."""
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION}
    env.update(TF_STUB_LOG=os.devnull, TF_STUB_STATE=str(tools.state), DOCKER_STUB_LOG=os.devnull)
    targeted = ["-chdir=x", "apply", "-target=aws_ecr_repository.app", f"-var=image_tag={TAG}"]
    subprocess.run([tools.bin / "terraform", *targeted], env=env, check=True, timeout=60)
    for tag in tags:
        image = f"{repository_uri(endpoint)}:{tag}"
        subprocess.run([tools.bin / "docker", "push", image], env=env, check=True, timeout=60)
    tools.state.unlink()


def test_deploy_builds_pushes_applies_waits_and_prints_the_dashboard_url(
    aws: str, tools: Tools, tmp_path: Path
) -> None:
    """A deploy applies the repository alone first, logs in with the token on stdin,
    builds both targets of the Dockerfile and pushes them under the tag, applies the
    whole configuration with that tag, waits for the three services to roll out and the
    dashboard's target to be healthy, and ends with the dashboard's URL."""
    backend, var_file = tmp_path / "backend.hcl", tmp_path / "prod.tfvars"
    backend.write_text('bucket = "state"\n')
    var_file.write_text('dashboard_allowed_cidrs = ["203.0.113.0/24"]\n')
    args = ("--backend-config", str(backend), "--var-file", str(var_file))
    done = deploy(aws, tools, *args, on_line=roll_out())
    assert done.returncode == 0, done.stdout + done.stderr

    chdir = f"-chdir={INFRA}"
    apply = [chdir, "apply", "-input=false", "-auto-approve"]
    variables = [f"-var-file={var_file}", f"-var=image_tag={TAG}"]
    repository = ["-target=aws_ecr_repository.app", "-target=aws_ecr_lifecycle_policy.app"]
    assert tools.terraform_calls() == [
        [chdir, "init", "-input=false", f"-backend-config={backend}"],
        [*apply, *repository, *variables],
        [chdir, "output", "-json"],
        [*apply, *variables],
        [chdir, "output", "-json"],
    ]
    uri = repository_uri(aws)
    token = client(aws, "ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    build = f"build --platform linux/amd64 -f {ROOT}/deploy/flowlogs/Dockerfile --target"
    assert tools.docker_calls() == [
        "info",
        f"login --username {user} --password-stdin {token['proxyEndpoint']}",
        f"stdin {password}",
        f"{build} pipeline -t {uri}:{TAG} {ROOT}",
        f"push {uri}:{TAG}",
        f"{build} dashboard -t {uri}:{TAG}-dashboard {ROOT}",
        f"push {uri}:{TAG}-dashboard",
    ]
    assert password not in done.stdout + done.stderr
    assert tags_in_ecr(aws) == {TAG, f"{TAG}-dashboard"}

    out = done.stdout
    assert "flowlogs-worker: 0/2 tasks running, 1 deployment, rollout IN_PROGRESS" in out
    assert "flowlogs-worker: 2/2 tasks running, 1 deployment, rollout COMPLETED" in out
    assert "flowlogs-dashboard: targetgroup/flowlogs-dashboard/" in out
    assert ": 1 of 1 target healthy" in out
    balancer = client(aws, "elbv2").describe_load_balancers()["LoadBalancers"][0]
    assert out.splitlines()[-1] == f"deploy: dashboard: http://{balancer['DNSName']}"
    assert done.stderr == ""


def test_a_tag_already_in_ecr_is_deployed_without_docker(aws: str, tools: Tools) -> None:
    """Both images of the tag already in the repository (tags are immutable: the same
    bytes) and no Docker engine: nothing is built or pushed, docker is not even asked,
    and the tag is applied and rolled out."""
    push_beforehand(aws, tools, TAG, f"{TAG}-dashboard")
    done = deploy(aws, tools, on_line=roll_out(), DOCKER_STUB_INFO_EXIT="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{TAG} and {TAG}-dashboard already in the repository" in done.stdout
    assert tools.docker_calls() == []
    apply = [f"-chdir={INFRA}", "apply", "-input=false", "-auto-approve", f"-var=image_tag={TAG}"]
    assert apply in tools.terraform_calls()
    assert done.stdout.splitlines()[-1].startswith("deploy: dashboard: http://")


def test_no_docker_and_no_image_stops_before_the_apply(aws: str, tools: Tools) -> None:
    """No Docker engine and only the pipeline's image in the repository: the deploy says
    so in one line and exits 4 without applying anything but the repository."""
    push_beforehand(aws, tools, TAG)
    done = deploy(aws, tools, DOCKER_STUB_INFO_EXIT="1")
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"deploy: failed: no Docker engine is reachable (`docker info` exited 1) to build "
        f"{TAG}-dashboard, which {repository_uri(aws)} does not hold; nothing was applied but "
        "the repository. Start Docker, or pass --image-tag with a tag already pushed"
    ]
    assert tools.docker_calls() == ["info"]
    assert [call[1] for call in tools.terraform_calls()] == ["init", "apply", "output"]
    assert client(aws, "ecs").list_clusters()["clusterArns"] == []


def test_services_that_never_roll_out_time_out(aws: str, tools: Tools) -> None:
    """Services that never run their tasks: the deploy gives up at --timeout (without
    sleeping a 60 s poll past it), exits 3 and names each service still rolling out."""
    done = deploy(aws, tools, "--timeout", "1", "--poll-seconds", "60")
    assert done.returncode == 3, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("deploy: failed: not stable within 1 s: flowlogs-reader: 0/1 tasks")
    assert "flowlogs-worker: 0/2 tasks running, 1 deployment, rollout IN_PROGRESS" in line
    assert "deploy: dashboard" not in done.stdout


def test_unhealthy_targets_keep_the_deploy_waiting(aws: str, tools: Tools) -> None:
    """Services rolled out but no healthy target behind the load balancer: the dashboard
    does not serve yet, so the deploy waits for it, and times out saying why."""
    done = deploy(aws, tools, "--timeout", "1", on_line=roll_out(), TF_STUB_TARGETS="0")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "flowlogs-dashboard: 1/1 tasks running, 1 deployment, rollout COMPLETED" in done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("deploy: failed: not stable within 1 s: flowlogs-dashboard: ")
    assert line.endswith(": no target registered")


def test_a_failed_rollout_fails_the_deploy_at_once(aws: str, tools: Tools) -> None:
    """A rollout ECS marks FAILED (its circuit breaker gave up) ends the wait at once,
    long before --timeout, with exit 1 and ECS's reason."""
    done = deploy(aws, tools, "--timeout", "600", on_line=roll_out("FAILED"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "deploy: failed: flowlogs-reader: rollout FAILED: ECS deployment failed (the test's "
        "scheduler)"
    ]


def test_a_failed_terraform_apply_fails_the_deploy(aws: str, tools: Tools) -> None:
    """terraform apply failing (its error on stderr) fails the deploy, exit 3, and no
    service is waited for."""
    done = deploy(aws, tools, TF_STUB_APPLY="fail")
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "Error: creating ECS Service: AccessDeniedException",
        "deploy: failed: terraform apply failed with exit code 1",
    ]
    assert "waiting" not in done.stdout


def test_a_repository_in_another_region_is_refused(aws: str, tools: Tools) -> None:
    """Terraform's region (var.region) differs from the deploy's: the deploy stops before
    building anything, naming the region to pass."""
    done = deploy(aws, tools, TF_STUB_REGION="us-east-2")
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "deploy: failed: the repository is in us-east-2 (Terraform's region) but the deploy's "
        "region is eu-west-1: pass --region us-east-2"
    ]
    assert tools.docker_calls() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_wait_stops_cleanly(aws: str, tools: Tools, signum: signal.Signals) -> None:
    """SIGINT or SIGTERM while the deploy waits for the services: it stops at once with
    exit 3 and one line saying ECS goes on (nothing of the deploy's is left running),
    without a traceback, even when the signal comes twice in quick succession."""

    sent: list[bool] = []

    def interrupt(line: str, running: subprocess.Popen[str]) -> None:
        if "rollout IN_PROGRESS" in line and not sent:
            sent.append(True)
            running.send_signal(signum)  # then the other one: two signals pending at once
            running.send_signal(signal.SIGINT if signum == signal.SIGTERM else signal.SIGTERM)

    done = deploy(aws, tools, on_line=interrupt)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "deploy: failed: interrupted while waiting for the services; nothing was stopped: ECS "
        "goes on rolling them out, and its circuit breaker rolls a failing one back"
    ]


def test_interrupted_apply_lets_terraform_stop_gracefully(aws: str, tools: Tools) -> None:
    """SIGTERM during terraform apply is passed on as one SIGINT, terraform's graceful
    stop (it saves its state and releases its lock), never as a kill; then exit 3."""

    def interrupt(line: str, running: subprocess.Popen[str]) -> None:
        if "Still creating" in line:
            running.send_signal(signal.SIGTERM)

    done = deploy(aws, tools, on_line=interrupt, TF_STUB_APPLY="hang")
    assert done.returncode == 3, done.stdout + done.stderr
    assert tools.terraform_calls()[-1] == ["signal", "SIGINT"]
    assert "Gracefully shutting down..." in done.stdout
    assert done.stderr.splitlines() == [
        "deploy: failed: interrupted: terraform apply was asked to stop (SIGINT) and exited 1; "
        "what it had applied is in its state: run the deploy again"
    ]


def test_dry_run_prints_every_command_and_call_and_runs_none(tmp_path: Path) -> None:
    """--dry-run prints each terraform and docker command and each AWS call as one JSON
    line, in order, with no credentials, no endpoint, and neither terraform nor docker
    on PATH: so it ran and called nothing."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOY_", "TF_"))},
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "IMAGE_TAG": TAG,
    }
    environment.pop("TERRAFORM", None)
    done = subprocess.run(
        [str(SCRIPT), "--dry-run"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == f"deploy: dry run: flow-logs platform ({INFRA}) to {REGION}, image tag {TAG}"
    printed = [json.loads(line) for line in lines if line.startswith("{")]
    shown = [
        " ".join(p["command"][2:] if p["command"][0] == "terraform" else p["command"][:2])
        if "command" in p
        else f"{p['service']}:{p['operation']}"
        for p in printed
    ]
    assert shown == [
        "init -input=false",
        "apply -input=false -auto-approve -target=aws_ecr_repository.app "
        f"-target=aws_ecr_lifecycle_policy.app -var=image_tag={TAG}",
        "output -json",
        "ecr:DescribeImages",
        "ecr:DescribeImages",
        "ecr:GetAuthorizationToken",
        "docker login",
        "docker build",
        "docker push",
        "docker build",
        "docker push",
        f"apply -input=false -auto-approve -var=image_tag={TAG}",
        "output -json",
        "ecs:DescribeServices",
        "elbv2:DescribeTargetHealth",
    ]
    assert all(
        p["command"][1] == f"-chdir={INFRA}" for p in printed if "terraform" in p.get("command", [])
    )
    [login] = [p for p in printed if p.get("command", [None, None])[1] == "login"]
    assert login["stdin"] == "<ECR authorization token>"
    builds = [p["command"] for p in printed if p.get("command", [None, None])[1] == "build"]
    assert [b[b.index("--target") + 1] for b in builds] == ["pipeline", "dashboard"]
    assert (
        "deploy: the login, builds and pushes below run only for tags the repository lacks" in lines
    )
    assert not any(line.startswith("deploy: dashboard") for line in lines)


# --- settings, in this process: refused before anything runs ---------------------------


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Only the test's settings, and nothing can run: no AWS client can be made, and no
    terraform command run but a dry run's (a case that gets that far fails)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DEPLOY_", "TF_")) or name in ("TERRAFORM", "IMAGE_TAG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("IMAGE_TAG", TAG)
    monkeypatch.setenv("TERRAFORM", sys.executable)  # an executable, never run

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"something ran: {args}")

    run = Terraform.run

    def printed_only(terraform: Terraform, *args: str, capture: bool = False) -> str:
        if not terraform.dry_run:
            refused(*args)
        return run(terraform, *args, capture=capture)

    monkeypatch.setattr(boto3, "client", refused)
    monkeypatch.setattr(Terraform, "run", printed_only)
    return monkeypatch


def run_main(argv: list[str]) -> int:
    try:
        return flowlogs.main(argv)
    except SystemExit as exc:  # argparse's errors exit
        return int(exc.code or 0)


REFUSED = [
    # (id, args, env, the failure line's text); each a one-line refusal, exit 2
    ("no-region", [], {"AWS_REGION": ""}, "no AWS region: pass --region or set AWS_REGION"),
    ("region", ["--region", "eu west 1"], {}, "--region 'eu west 1' is not an AWS region"),
    ("profile", [], {"AWS_PROFILE": "nope"}, "The config profile (nope) could not be found"),
    ("dir", ["--terraform-dir", "nowhere"], {}, "--terraform-dir nowhere: no such directory"),
    ("dir-no-tf", [], {"DEPLOY_TERRAFORM_DIR": "docs"}, "--terraform-dir docs: no .tf file"),
    ("backend", ["--backend-config", "infra/x.hcl"], {}, "--backend-config infra/x.hcl: no such"),
    ("var-file", [], {"DEPLOY_VAR_FILE": "prod.tfvars"}, "--var-file prod.tfvars: no such file"),
    ("var-file-dir", ["--var-file", "infra"], {}, "--var-file infra: no such file"),
    ("terraform", [], {"TERRAFORM": "/nonexistent/terraform"}, "no terraform binary: '/nonex"),
    ("tag-latest", ["--image-tag", "latest"], {}, "--image-tag 'latest': a Docker tag"),
    ("tag-space", [], {"IMAGE_TAG": "a b"}, "--image-tag 'a b': a Docker tag"),
    ("tag-dash", ["--image-tag=-x"], {}, "--image-tag '-x': a Docker tag"),
    ("tag-long", ["--image-tag", "a" * 119], {}, "at most 118 characters"),
    ("timeout-inf", ["--timeout", "inf"], {}, "--timeout must be a finite positive number"),
    ("timeout-zero", [], {"DEPLOY_TIMEOUT_SECONDS": "0"}, "--timeout must be a finite positive"),
    ("poll-nan", ["--poll-seconds", "nan"], {}, "--poll-seconds must be a finite positive"),
    ("unknown-flag", ["--nope"], {}, "unrecognized arguments: --nope"),
    ("no-value", ["--timeout"], {}, "argument --timeout: expected one argument"),
]


@pytest.mark.parametrize(
    ("args", "env", "expected"), [case[1:] for case in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_invalid_setting_is_refused_before_anything_runs(
    settings_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    """An invalid setting (a flag or its variable) exits 2 with one line naming it,
    before any terraform command or AWS call."""
    for name, value in env.items():
        settings_env.setenv(name, value)
    code = run_main(args)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert out == ""
    *usage, last = err.splitlines()
    assert last.startswith("deploy: failed: ") and expected in last, err
    argparse_error = args in (["--nope"], ["--timeout"])
    assert usage[0].startswith("usage: deploy/flowlogs.sh") if argparse_error else not usage


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """The command in this process with --dry-run: exit code, its printed commands, stderr."""
    code = run_main([*args, "--dry-run"])
    out, err = capsys.readouterr()
    commands = [json.loads(line).get("command") for line in out.splitlines() if line[:1] == "{"]
    return code, [" ".join(c) for c in commands if c], err


def test_dry_run_needs_no_terraform_and_takes_the_files_given(
    settings_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dry run shows TERRAFORM's value though it is not installed; an empty variable is
    its default; a backend.hcl in the configuration is taken, and a var file is passed
    to both applies."""
    directory = tmp_path / "infra"
    directory.mkdir()
    (directory / "main.tf").write_text("")
    (directory / "backend.hcl").write_text('bucket = "state"\n')
    (tmp_path / "prod.tfvars").write_text("")
    settings_env.setenv("TERRAFORM", "tf-not-installed")
    settings_env.setenv("DEPLOY_TIMEOUT_SECONDS", "")
    code, commands, err = dry_run(
        capsys, "--terraform-dir", str(directory), "--var-file", str(tmp_path / "prod.tfvars")
    )
    assert code == 0, err
    assert commands[0] == f"tf-not-installed -chdir={directory} init -input=false " + (
        f"-backend-config={directory / 'backend.hcl'}"
    )
    applies = [c for c in commands if " apply " in c]
    assert len(applies) == 2
    assert all(f"-var-file={tmp_path / 'prod.tfvars'} -var=image_tag={TAG}" in c for c in applies)


GIT_STUB = """#!/bin/sh
case "$1" in
  rev-parse) [ -n "$GIT_STUB_SHA" ] || { echo "fatal: not a git repository" >&2; exit 128; }
             echo "$GIT_STUB_SHA" ;;
  status) printf '%s\\n' "$GIT_STUB_STATUS" ;;
esac
"""


@pytest.mark.parametrize(
    ("sha", "status", "refusal"),
    [
        ("4d5e6f7", "", None),
        ("4d5e6f7", "?? streams/new.py", "the checkout has uncommitted changes, so its commit"),
        ("", "", "no image tag: not a git checkout; pass --image-tag"),
    ],
    ids=["clean", "uncommitted", "no-checkout"],
)
def test_default_image_tag_is_the_commit_of_a_clean_checkout(
    settings_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sha: str,
    status: str,
    refusal: str | None,
) -> None:
    """Without --image-tag the tag is the checkout's commit; a checkout with uncommitted
    or untracked files is refused (exit 2): an immutable tag would name the wrong code."""
    git = tmp_path / "git"
    git.write_text(GIT_STUB)
    git.chmod(0o755)
    settings_env.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    settings_env.setenv("GIT_STUB_SHA", sha)
    settings_env.setenv("GIT_STUB_STATUS", status)
    settings_env.delenv("IMAGE_TAG")
    code, commands, err = dry_run(capsys)
    if refusal is None:
        assert code == 0, err
        assert commands[1].endswith(f"-var=image_tag={sha}")
    else:
        assert code == 2
        assert err.startswith("deploy: failed: ") and refusal in err
