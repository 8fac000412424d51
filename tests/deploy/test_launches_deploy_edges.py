"""deploy/launches.sh at its edges: settings refused before any AWS call, an interrupted
deploy, and roles it reuses that carry more than it put there.

The settings cases run the command in this process (``deploy.launches.main``, a dry run
or a refusal before any call: boto3 clients are made to fail); the others run the script
against moto's server, as tests/deploy/test_launches_deploy.py does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any

import boto3
import pytest

from deploy import launches
from tests.support.deploy import (
    CLUSTER,
    SCRIPT,
    DockerStub,
    FargateStandIn,
    client,
    deploy,
    deploy_environment,
)

pytestmark = pytest.mark.integration

ROLE = "candidate-test-task-role"
DRY = "--dry-run"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the test's settings: none of the machine's AWS, deploy or job variables, and
    no AWS client can be made (a case that makes an AWS call fails)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "LAUNCHES_", "DEPLOY_", "ECS_", "ECR_", "S3_")):
            monkeypatch.delenv(name)
    for name in ("SPACEX_API_URL", "IMAGE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("IMAGE_TAG", "test-tag")

    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"an AWS call was made: {args}")

    monkeypatch.setattr(boto3, "client", no_client)
    return monkeypatch


REFUSED = [
    # (id, args, env, the failure line's text); each a one-line refusal, exit 2
    ("cpu-inf", ["--cpu", "1e400"], {}, "--cpu must be a whole number, not '1e400'"),
    ("cpu-fraction", ["--cpu", "0.5"], {}, "--cpu must be a whole number"),
    ("cpu-not-fargate", ["--cpu", "300"], {}, "Fargate's CPU units are one of 256, 512,"),
    ("memory-huge", ["--memory", "99999999999999999999"], {}, "--memory must be a whole"),
    ("memory-vs-cpu", ["--cpu", "256", "--memory", "4096"], {}, "for 256 CPU units is 512,"),
    ("memory-step", ["--cpu", "8192", "--memory", "17408"], {}, "16384 to 61440 in steps of"),
    ("poll-inf", ["--poll-seconds", "1e400"], {}, "--poll-seconds must be a finite positive"),
    ("timeout-inf", ["--timeout", "inf"], {}, "--timeout must be a finite positive"),
    ("timeout-nan", [], {"DEPLOY_TIMEOUT_SECONDS": "nan"}, "--timeout must be a finite"),
    ("timeout-zero", ["--timeout", "0"], {}, "--timeout must be a finite positive"),
    ("profile", [], {"AWS_PROFILE": "nope"}, "The config profile (nope) could not be found"),
    ("no-region", [], {"AWS_REGION": ""}, "no AWS region: pass --region or set AWS_REGION"),
    ("region", ["--region", "eu west 1"], {}, "--region 'eu west 1' is not an AWS region"),
    ("bucket", ["--bucket", "a,b c"], {}, "--bucket (S3_BUCKET): the job refuses it: not an"),
    ("bucket-case", [], {"S3_BUCKET": "Upper-Case"}, "--bucket (S3_BUCKET): the job refuses"),
    ("key", ["--key", "a/../b.parquet"], {}, "--key (S3_KEY): the job refuses it: an object"),
    ("api-url", ["--spacex-api-url", "ftp://x"], {}, "--spacex-api-url (SPACEX_API_URL): the"),
    ("subnets-blank", [], {"ECS_SUBNETS": " , "}, "--subnets lists none"),
    ("subnets", ["--subnets", "subnet-zzz,bogus"], {}, "'subnet-zzz' is not an id like"),
    ("groups", [], {"ECS_SECURITY_GROUPS": "sg-01,default"}, "'default' is not an id like sg-"),
    ("blank", ["--cluster", " "], {}, "--cluster (ECS_CLUSTER) is blank"),
    ("role", ["--task-role", "my role"], {}, "'my role' is neither an IAM role name nor"),
    ("public-ip", ["--assign-public-ip", "enabled"], {}, "must be ENABLED or DISABLED"),
    # argparse's own errors: its usage, then the one failure line
    ("unknown-flag", ["--nope"], {}, "unrecognized arguments: --nope"),
    ("no-value", ["--cpu"], {}, "argument --cpu: expected one argument"),
]

ACCEPTED = [
    # (id, args, env, a dry run's call, params it must include)
    (
        "empty-is-unset",
        [],
        {"ECS_CLUSTER": "", "S3_BUCKET": ""},
        "DescribeClusters",
        {"clusters": [CLUSTER]},
    ),
    ("gov-region", ["--region", "us-gov-west-1"], {}, "DescribeClusters", {"clusters": [CLUSTER]}),
    (
        "largest-task",
        ["--cpu", "16384", "--memory", "122880"],
        {},
        "RegisterTaskDefinition",
        {"cpu": "16384", "memory": "122880"},
    ),
    # The job on Fargate sees only what is registered: not the deployer's own variables.
    (
        "deployer-job-vars",
        [],
        {"LAUNCHES_OUTPUT_DIR": "/tmp/x", "LAUNCHES_ATTEMPTS": "0"},
        "DescribeClusters",
        {"clusters": [CLUSTER]},
    ),
]


def run_main(argv: list[str]) -> int:
    try:
        return launches.main(argv)
    except SystemExit as exc:  # argparse's errors exit
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("args", "env", "expected"), [case[1:] for case in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_invalid_setting_is_refused_before_any_aws_call(
    settings_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    """An invalid setting (a flag or its variable) exits 2 with one line naming it,
    before any AWS call: nothing is created for a deploy that cannot run."""
    for name, value in env.items():
        settings_env.setenv(name, value)
    code = run_main(args)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert out == ""
    *usage, last = err.splitlines()
    assert last.startswith("deploy: failed: ") and expected in last, err
    argparse_error = args in (["--nope"], ["--cpu"])
    assert usage[0].startswith("usage: deploy/launches.sh") if argparse_error else not usage, err


@pytest.mark.parametrize(
    ("args", "env", "operation", "params"),
    [case[1:] for case in ACCEPTED],
    ids=[c[0] for c in ACCEPTED],
)
def test_valid_setting_is_accepted(
    settings_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    operation: str,
    params: dict[str, Any],
) -> None:
    """Edges that are valid: an empty variable is unset (its default applies), GovCloud's
    region, Fargate's largest size, the deployer's own LAUNCHES_* variables."""
    for name, value in env.items():
        settings_env.setenv(name, value)
    code = run_main([*args, DRY])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    calls = [json.loads(line) for line in out.splitlines() if line.startswith('{"service"')]
    [call] = [c for c in calls if c["operation"] == operation]
    assert params.items() <= call["params"].items()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_deploy_stops_its_task(
    account: str, docker: DockerStub, signum: signal.Signals
) -> None:
    """SIGINT or SIGTERM while the deploy waits for its task stops the task (which would
    otherwise run on) and exits 3 saying so, without a traceback."""
    deploying = subprocess.Popen(
        [str(SCRIPT)],
        env=deploy_environment(account, docker),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert deploying.stdout is not None
        for line in deploying.stdout:  # moto holds the task RUNNING: nothing stops it
            if line.startswith("deploy: task RUNNING"):
                deploying.send_signal(signum)
                break
        out, err = deploying.communicate(timeout=60)
    finally:
        deploying.kill()
    ecs = client(account, "ecs")
    [arn] = ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedReason"] == "deploy was interrupted"
    assert deploying.returncode == 3, out + err
    assert err.splitlines() == [f"deploy: failed: interrupted; task {arn} stopped"]


def test_reused_role_gets_its_trust_policy_back_and_its_extra_policies_named(
    account: str, docker: DockerStub
) -> None:
    """A role the deploy manages by name and finds already there has its trust policy
    set back to ECS tasks alone, and its inline policy set; policies the deploy did not
    put there are left in place (another workload may rely on them), each named in a
    warning."""
    iam = client(account, "iam")
    anyone = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [anyone]}),
    )
    everything = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    admin = iam.create_policy(PolicyName="admin", PolicyDocument=everything)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=admin)
    iam.put_role_policy(RoleName=ROLE, PolicyName="extra", PolicyDocument=everything)

    runtime = FargateStandIn(account, command=["echo", "stand-in job"])
    runtime.start()
    done = deploy(account, docker, "--skip-check")
    runtime.finish(done)
    assert done.returncode == 0, done.stdout + done.stderr

    trust = iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert sorted(iam.list_role_policies(RoleName=ROLE)["PolicyNames"]) == [
        "extra",
        "launches-object",
    ]
    attached = iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [admin]
    kept = "(left in place: the deploy does not manage it)"
    assert done.stderr.splitlines() == [
        f"deploy: warning: role {ROLE} also has the attached policy {admin} {kept}",
        f"deploy: warning: role {ROLE} also has the inline policy extra {kept}",
    ]
