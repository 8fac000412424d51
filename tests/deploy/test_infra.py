"""Offline checks of the Terraform in infra/ (the flow-logs platform on AWS).

No provider can be downloaded here, so what can be checked is checked without one:
every file parses (python-hcl2) and its structure says what a reviewer asks (bucket,
repository, roles, backend, outputs, flow log); checkov finds no failed check and each
skipped one is justified in the code; `terraform fmt` when a terraform binary exists;
and, when a local provider mirror exists too (this workplace's machines have one at
/opt/tf-plugins), `terraform validate` and `terraform plan` against moto's emulated
account, which evaluates every expression and variable validation with real values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.integration.s3_server import moto_server

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BOOTSTRAP = INFRA / "bootstrap"
ACCOUNT = "123456789012"  # moto's account
REGION = "eu-west-1"  # the default of var.region

OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)

#: Actions AWS offers no resource-level permission for: "*" is their only resource.
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken"}

#: Where checkov may live: it pins packaging<24 and boto3 1.35, which the project's
#: pytest and boto3 pins exclude, so it gets a virtualenv of its own (the first entry).
CHECKOV_CANDIDATES = (
    ROOT / ".venv" / "checkov" / "bin" / "checkov",
    Path(sys.executable).parent / "checkov",
)

#: A directory of unpacked providers (registry.terraform.io/hashicorp/aws/<v>/<os_arch>).
PROVIDER_MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins"))

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)")


# ---- the configuration, parsed ------------------------------------------------------


@dataclass
class Config:
    """The blocks of one Terraform directory (its *.tf files, not its subdirectories)."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[(kind, name)]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def statements(self, document: str) -> list[dict[str, Any]]:
        return list(self.data[("aws_iam_policy_document", document)]["statement"])


def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=OPTIONS))


def load(directory: Path) -> Config:
    config = Config()
    for path in sorted(directory.glob("*.tf")):
        parsed = parse(path)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    config.resources[(kind, name)] = body
        for block in parsed.get("data", []):
            for kind, named in block.items():
                for name, body in named.items():
                    config.data[(kind, name)] = body
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for block in parsed.get("locals", []):
            config.locals.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


@pytest.fixture(scope="module")
def main() -> Config:
    return load(INFRA)


@pytest.fixture(scope="module")
def bootstrap() -> Config:
    return load(BOOTSTRAP)


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def allows(statement: dict[str, Any]) -> bool:
    return bool(statement.get("effect", "Allow") == "Allow")


def conditions(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["variable"]: c for c in statement.get("condition", [])}


def with_action(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    return only([s for s in statements if action in s["actions"]])


# ---- structure ----------------------------------------------------------------------


def test_every_terraform_file_parses() -> None:
    """Each .tf file of infra/ and infra/bootstrap/ parses as HCL, split by concern."""
    files = sorted(INFRA.rglob("*.tf"))
    assert {p.name for p in files} >= {
        "versions.tf", "backend.tf", "providers.tf", "variables.tf", "locals.tf",
        "network.tf", "security.tf", "s3.tf", "flowlogs.tf", "kms.tf", "ecr.tf",
        "iam.tf", "ecs.tf", "alb.tf", "msk.tf", "logs.tf", "outputs.tf", "main.tf",
    }  # fmt: skip
    for path in files:
        assert parse(path), path
    for example in ("backend.hcl.example", "terraform.tfvars.example"):
        assert parse(INFRA / example)


@pytest.mark.parametrize(
    ("directory", "bucket", "key", "policy"),
    [(INFRA, "logs", "data", "logs_bucket"), (BOOTSTRAP, "state", "state", "state")],
)
def test_buckets_are_encrypted_versioned_private_and_tls_only(
    directory: Path, bucket: str, key: str, policy: str
) -> None:
    """The logs bucket and the state bucket: KMS with rotation, versioning, no public access, TLS
    only."""
    config = load(directory)
    encryption = config.resource("aws_s3_bucket_server_side_encryption_configuration", bucket)
    default = only(only(encryption["rule"])["apply_server_side_encryption_by_default"])
    assert default == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": f"${{aws_kms_key.{key}.arn}}",
    }
    assert config.resource("aws_kms_key", key)["enable_key_rotation"] is True

    versioning = config.resource("aws_s3_bucket_versioning", bucket)
    assert only(versioning["versioning_configuration"])["status"] == "Enabled"

    block = config.resource("aws_s3_bucket_public_access_block", bucket)
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
    assert all(block[flag] is True for flag in (*flags, "restrict_public_buckets"))
    ownership = config.resource("aws_s3_bucket_ownership_controls", bucket)
    assert only(ownership["rule"])["object_ownership"] == "BucketOwnerEnforced"

    attached = config.resource("aws_s3_bucket_policy", bucket)
    assert attached["policy"] == f"${{data.aws_iam_policy_document.{policy}.json}}"
    deny = only([s for s in config.statements(policy) if s.get("effect") == "Deny"])
    assert deny["actions"] == ["s3:*"]
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert set(deny["resources"]) == {
        f"${{aws_s3_bucket.{bucket}.arn}}",
        f"${{aws_s3_bucket.{bucket}.arn}}/*",
    }
    secure = conditions(deny)["aws:SecureTransport"]
    assert (secure["test"], secure["values"]) == ("Bool", ["false"])

    rules = config.resource("aws_s3_bucket_lifecycle_configuration", bucket)["rule"]
    assert any("abort_incomplete_multipart_upload" in rule for rule in rules)
    assert all(rule["status"] == "Enabled" and "filter" in rule for rule in rules)


def test_raw_flow_logs_expire_and_the_lake_keeps_its_current_versions(main: Config) -> None:
    """Raw objects under AWSLogs/ expire after flow_logs_retention_days; lake objects never do."""
    rules = {
        rule["id"]: rule
        for rule in main.resource("aws_s3_bucket_lifecycle_configuration", "logs")["rule"]
    }
    raw = rules["expire-raw-flow-logs"]
    assert only(raw["filter"])["prefix"] == "AWSLogs/"
    assert only(raw["expiration"])["days"] == "${var.flow_logs_retention_days}"
    lake = rules["lake-old-versions"]
    assert only(lake["filter"])["prefix"] == "${local.lake_prefix}"
    assert only(lake["expiration"]) == {"expired_object_delete_marker": True}
    assert "noncurrent_version_expiration" in lake


def test_ecr_repository_is_immutable_scanned_and_encrypted(main: Config) -> None:
    """The repository's tags are immutable, each push is scanned, images are KMS-encrypted."""
    repository = main.resource("aws_ecr_repository", "app")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert only(repository["image_scanning_configuration"])["scan_on_push"] is True
    encryption = only(repository["encryption_configuration"])
    assert encryption == {"encryption_type": "KMS", "kms_key": "${aws_kms_key.data.arn}"}


def policy_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for directory in (INFRA, BOOTSTRAP):
        for (kind, name), body in load(directory).data.items():
            if kind == "aws_iam_policy_document":
                found.append((f"{directory.name}/{name}", body))
    return found


@pytest.mark.parametrize(("name", "document"), policy_documents(), ids=lambda v: str(v)[:40])
def test_no_policy_allows_a_wildcard_action_or_resource(
    name: str, document: dict[str, Any]
) -> None:
    """No Allow statement names "*" or "service:*" as action, nor "*" as resource, except where AWS
    requires it."""
    for statement in filter(allows, document["statement"]):
        assert "not_actions" not in statement and "not_resources" not in statement, name
        for action in statement["actions"]:
            assert action != "*" and not action.endswith(":*"), (name, action)
        if "*" in statement.get("resources", []):
            assert set(statement["actions"]) <= STAR_RESOURCE_ACTIONS, (name, statement)


def test_reader_reads_only_the_flow_log_prefix(main: Config) -> None:
    """The reader's role may list and get objects under AWSLogs/<account>/vpcflowlogs/ and decrypt
    them, nothing else."""
    assert main.locals["logs_prefix"] == "AWSLogs/${local.account_id}/vpcflowlogs/"
    statements = main.statements("reader")
    assert {a for s in statements for a in s["actions"]} == {
        "s3:GetObject", "s3:ListBucket", "kms:Decrypt",
    }  # fmt: skip
    get = with_action(statements, "s3:GetObject")
    assert get["resources"] == ["${aws_s3_bucket.logs.arn}/${local.logs_prefix}*"]
    listing = with_action(statements, "s3:ListBucket")
    assert listing["resources"] == ["${aws_s3_bucket.logs.arn}"]
    prefix = conditions(listing)["s3:prefix"]
    assert prefix["test"] == "StringLike"
    assert all("local.logs_prefix" in value for value in prefix["values"])
    decrypt = with_action(statements, "kms:Decrypt")
    assert decrypt["resources"] == ["${aws_kms_key.data.arn}"]
    assert conditions(decrypt)["kms:ViaService"]["values"] == ["s3.${var.region}.amazonaws.com"]


@pytest.mark.parametrize(
    ("role", "object_actions", "kms_actions"),
    [
        (
            "worker",
            {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"},
            {"kms:Decrypt", "kms:GenerateDataKey"},
        ),
        ("dashboard", {"s3:GetObject"}, {"kms:Decrypt"}),
    ],
)
def test_workers_and_dashboard_reach_only_the_lake_prefix(
    main: Config, role: str, object_actions: set[str], kms_actions: set[str]
) -> None:
    """The worker reads and writes only the lake prefix, the dashboard only reads it; neither
    touches the flow logs."""
    statements = main.statements(role)
    assert {a for s in statements for a in s["actions"]} == {
        *object_actions, *kms_actions, "s3:ListBucket",
    }  # fmt: skip
    objects = with_action(statements, "s3:GetObject")
    assert set(objects["actions"]) == object_actions
    assert objects["resources"] == ["${aws_s3_bucket.logs.arn}/${local.lake_prefix}*"]
    listing = with_action(statements, "s3:ListBucket")
    assert listing["resources"] == ["${aws_s3_bucket.logs.arn}"]
    assert conditions(listing)["s3:prefix"]["values"] == [
        "${var.lake_prefix}",
        "${local.lake_prefix}*",
    ]
    assert "logs_prefix" not in json.dumps(statements)
    assert "kms:ViaService" in conditions(with_action(statements, "kms:Decrypt"))


def test_execution_role_pulls_one_repository_and_writes_one_log_group(main: Config) -> None:
    """ECS's execution role may pull from the one repository and write streams of the one log
    group."""
    statements = main.statements("execution")
    assert with_action(statements, "ecr:GetAuthorizationToken")["resources"] == ["*"]
    pull = with_action(statements, "ecr:BatchGetImage")
    assert pull["resources"] == ["${aws_ecr_repository.app.arn}"]
    logs = with_action(statements, "logs:PutLogEvents")
    assert set(logs["actions"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["resources"] == ["${aws_cloudwatch_log_group.tasks.arn}:log-stream:*"]
    assert len(statements) == 3


def test_each_task_runs_with_its_own_role(main: Config) -> None:
    """Each task definition has its own task role with its own inline policy, this account's ECS
    tasks alone may assume it, and no managed policy is attached."""
    assert not main.of_type("aws_iam_role_policy_attachment")
    assert not main.of_type("aws_iam_policy")
    for role in ("reader", "worker", "dashboard"):
        definition = main.resource("aws_ecs_task_definition", role)
        assert definition["task_role_arn"] == f"${{aws_iam_role.{role}.arn}}"
        assert definition["execution_role_arn"] == "${aws_iam_role.execution.arn}"
        attached = main.resource("aws_iam_role_policy", role)
        assert attached["role"] == f"${{aws_iam_role.{role}.id}}"
        assert attached["policy"] == f"${{data.aws_iam_policy_document.{role}.json}}"
        trust = main.resource("aws_iam_role", role)["assume_role_policy"]
        assert trust == "${data.aws_iam_policy_document.ecs_tasks_trust.json}"
    trust_statement = only(main.statements("ecs_tasks_trust"))
    assert trust_statement["principals"] == [
        {"type": "Service", "identifiers": ["ecs-tasks.amazonaws.com"]}
    ]
    assert set(conditions(trust_statement)) == {"aws:SourceAccount", "aws:SourceArn"}


def test_backend_is_s3_with_locking(main: Config, bootstrap: Config) -> None:
    """State is remote in S3, encrypted and locked by S3's lock file; the bootstrap keeps its own
    locally."""
    backends = [b for t in main.terraform for b in t.get("backend", [])]
    s3 = only(backends)["s3"]
    assert s3["use_lockfile"] is True and s3["encrypt"] is True
    assert s3["key"].endswith(".tfstate")
    required = only([t for t in main.terraform if "required_version" in t])["required_version"]
    assert re.fullmatch(r">= ?1\.(1[0-9]|[2-9][0-9])(\.\d+)?", required), required
    assert not [b for t in bootstrap.terraform for b in t.get("backend", [])]
    assert "state_bucket" in bootstrap.outputs and "backend_config" in bootstrap.outputs


def test_outputs_name_the_dashboard_bucket_lake_and_repository(main: Config) -> None:
    """The outputs a deploy needs exist, each described."""
    assert set(main.outputs) >= {
        "dashboard_url", "logs_bucket", "ecr_repository_url", "lake_uri", "flow_logs_uri",
    }  # fmt: skip
    assert all(output.get("description") for output in main.outputs.values())
    assert main.outputs["ecr_repository_url"]["value"] == "${aws_ecr_repository.app.repository_url}"
    assert "aws_lb.dashboard.dns_name" in main.locals["dashboard_url"]


def test_flow_log_delivers_to_the_bucket_for_this_account_only(main: Config) -> None:
    """The VPC flow log writes to the bucket in AWS's layout, and the bucket policy lets AWS's log
    delivery write there for this account alone."""
    flow_log = main.resource("aws_flow_log", "vpc")
    assert flow_log["log_destination_type"] == "s3"
    assert flow_log["log_destination"] == "${aws_s3_bucket.logs.arn}"
    options = only(flow_log["destination_options"])
    assert options["hive_compatible_partitions"] is False and options["per_hour_partition"] is False
    assert "aws_vpc.main.id" in main.locals["flow_log_vpcs"]

    statements = main.statements("logs_bucket")
    delivery = [
        s
        for s in statements
        if s.get("principals", [{}])[0].get("identifiers") == ["delivery.logs.amazonaws.com"]
    ]
    write = with_action(delivery, "s3:PutObject")
    assert write["actions"] == ["s3:PutObject"]
    assert write["resources"] == ["${aws_s3_bucket.logs.arn}/${local.logs_prefix}*"]
    assert conditions(write)["s3:x-amz-acl"]["values"] == ["bucket-owner-full-control"]
    check = with_action(delivery, "s3:GetBucketAcl")
    assert set(check["actions"]) == {"s3:GetBucketAcl", "s3:ListBucket"}
    for statement in (write, check):
        guard = conditions(statement)
        assert guard["aws:SourceAccount"]["values"] == ["${local.account_id}"]
        assert guard["aws:SourceArn"]["test"] == "ArnLike"


def test_security_groups_open_single_ports_and_never_the_world(main: Config) -> None:
    """Every rule is one TCP port with a description, none reaches 0.0.0.0/0, and Kafka admits only
    the reader and the workers."""
    assert not any(
        "ingress" in g or "egress" in g for g in main.of_type("aws_security_group").values()
    )
    rules = {
        **main.of_type("aws_vpc_security_group_ingress_rule"),
        **main.of_type("aws_vpc_security_group_egress_rule"),
    }
    assert len(rules) >= 10
    for name, rule in rules.items():
        assert rule["ip_protocol"] == "tcp" and rule["from_port"] == rule["to_port"], name
        assert rule["description"], name
        assert "0.0.0.0/0" not in json.dumps(rule) and "::/0" not in json.dumps(rule), name
    msk = main.resource("aws_vpc_security_group_ingress_rule", "msk_from_client")
    assert msk["referenced_security_group_id"] == "${aws_security_group.task[each.key].id}"
    assert main.locals["kafka_clients"] == '${toset(["reader", "worker"])}'


def test_services_run_private_with_one_reader_and_the_dashboard_behind_the_alb(
    main: Config,
) -> None:
    """Tasks get no public address; one reader, worker_count workers, and the dashboard on 8050
    behind a health-checked target group."""
    services = main.of_type("aws_ecs_service")
    assert set(services) == {"reader", "worker", "dashboard"}
    for service in services.values():
        assert only(service["network_configuration"])["assign_public_ip"] is False
        assert service["launch_type"] == "FARGATE"
    assert services["reader"]["desired_count"] == 1
    assert services["worker"]["desired_count"] == "${var.worker_count}"
    balancer = only(services["dashboard"]["load_balancer"])
    assert (balancer["container_name"], balancer["container_port"]) == ("dashboard", 8050)
    group = main.resource("aws_lb_target_group", "dashboard")
    assert (group["port"], group["target_type"]) == (8050, "ip")
    assert only(group["health_check"])["path"] == "${var.dashboard_health_path}"
    assert main.resource("aws_lb", "dashboard")["drop_invalid_header_fields"] is True


def entry_points() -> dict[str, list[str]]:
    """Each build target's ENTRYPOINT in deploy/flowlogs/Dockerfile."""
    found: dict[str, list[str]] = {}
    target = ""
    dockerfile = ROOT / "deploy" / "flowlogs" / "Dockerfile"
    for line in dockerfile.read_text().splitlines():
        if match := re.match(r"FROM \S+ AS (\w+)", line):
            target = match.group(1)
        elif line.startswith("ENTRYPOINT "):
            found[target] = json.loads(line.removeprefix("ENTRYPOINT "))
    return found


def test_each_container_gives_its_images_entry_point_arguments_only(main: Config) -> None:
    """The images have no shell and exec-form entry points: the reader and the worker
    run the pipeline image's `python -m streams.flowlogs` with their command, the
    dashboard its own image (<tag>-dashboard) with networkflow's arguments."""
    images = entry_points()
    assert images["pipeline"] == ["python", "-m", "streams.flowlogs"]
    assert images["dashboard"][:4] == ["python", "-m", "streams.flowlogs.dashboard", "dashboard"]
    assert main.locals["reader_command"] == ["reader", "-l", "info"]
    assert main.locals["worker_command"] == ["worker", "-l", "info"]
    assert main.locals["dashboard_image"] == "${local.image}-dashboard"
    # `var.dashboard_command != null ? var.dashboard_command : [...]`, as written
    arguments = main.locals["dashboard_command"].split(":", 1)[1]
    assert '"--alerts-url", local.alerts_url' in arguments and '"--bucket"' in arguments
    assert not any(f'"{word}"' in arguments for word in ("sh", "python", "networkflow"))


def test_worker_advertises_its_task_address_and_the_dashboard_finds_the_workers(
    main: Config,
) -> None:
    """WEB_HOST=ecs-task: the worker reads its task's address at start (routed views);
    Cloud Map names the worker tasks, the dashboard's alerts URL uses that name, and the
    security groups open 6066 from the dashboard to the workers only."""
    assert {"name": "WEB_HOST", "value": "ecs-task"} in main.locals["worker_environment"]
    worker = main.resource("aws_ecs_service", "worker")
    registry = only(worker["service_registries"])["registry_arn"]
    assert registry == "${aws_service_discovery_service.worker.arn}"
    assert "aws_service_discovery_service.worker.name" in main.locals["alerts_url"]
    assert main.locals["alerts_url"].endswith(":6066")
    into = main.resource("aws_vpc_security_group_ingress_rule", "worker_from_dashboard")
    out = main.resource("aws_vpc_security_group_egress_rule", "dashboard_to_worker")
    for rule in (into, out):
        assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (6066, 6066, "tcp")


def test_variables_are_typed_and_described(main: Config, bootstrap: Config) -> None:
    """Every variable has a type and a description; the ones without a sensible default are few."""
    for config in (main, bootstrap):
        for name, variable in config.variables.items():
            assert variable.get("type") and variable.get("description"), name
    required = {name for name, v in main.variables.items() if "default" not in v}
    assert required == {"image_tag", "dashboard_allowed_cidrs"}


# ---- checkov ---------------------------------------------------------------------------


def checkov_binary() -> Path | None:
    configured = os.environ.get("CHECKOV")
    candidates = (Path(configured),) if configured else CHECKOV_CANDIDATES
    return next((path for path in candidates if path.is_file()), None)


def skip_comments() -> Counter[tuple[str, str]]:
    """(file relative to infra/, check id) of every skip comment; each reason is checked here."""
    found: Counter[tuple[str, str]] = Counter()
    for path in INFRA.rglob("*.tf"):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            reason = match.group(2).strip()
            assert len(reason) >= 30, f"{path.name}: {match.group(1)} needs a reason"
            found[("/" + path.relative_to(INFRA).as_posix(), match.group(1))] += 1
    return found


def test_checkov_finds_no_failed_check_and_every_skip_is_justified() -> None:
    """checkov's Terraform checks all pass but the skipped ones, and each skip is a commented reason
    in the code."""
    checkov = checkov_binary()
    if checkov is None:
        message = (
            "checkov is not installed: python3 -m venv .venv/checkov && "
            ".venv/checkov/bin/pip install -r infra/checkov-requirements.txt"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",  # no download of the guidelines' mapping
        "LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [str(checkov), "-d", str(INFRA), "--framework", "terraform", "--compact",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    summary, results = report["summary"], report["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert failed == [], failed
    assert summary["failed"] == 0, summary
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 70
    assert result.returncode == 0, result.stderr[-2000:]
    skipped = Counter((c["file_path"], c["check_id"]) for c in results["skipped_checks"])
    assert skipped == skip_comments()


# ---- terraform -------------------------------------------------------------------------


def terraform_binary() -> str | None:
    return os.environ.get("TERRAFORM") or shutil.which("terraform")


def terraform_env(config_file: Path) -> dict[str, str]:
    """No AWS or Terraform setting of the caller's, no version check-in with HashiCorp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        TF_CLI_CONFIG_FILE=str(config_file),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def test_terraform_fmt_leaves_every_file_as_it_is(tmp_path: Path) -> None:
    """`terraform fmt -check -recursive infra` changes nothing."""
    terraform = terraform_binary()
    if terraform is None:
        pytest.skip("no terraform binary on PATH (or TERRAFORM): only it can run `terraform fmt`")
    config = tmp_path / "terraformrc"
    config.write_text("")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)],
        capture_output=True, text=True, env=terraform_env(config), timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Workspace:
    """A copy of infra/ initialised against the local provider mirror, and moto's endpoint."""

    directory: Path
    env: dict[str, str]
    terraform: str

    def run(self, *args: str, where: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.terraform, *args, "-no-color"],
            cwd=where or self.directory, capture_output=True, text=True, env=self.env,
            timeout=240, check=False,
        )  # fmt: skip

    def plan(self, **variables: str) -> subprocess.CompletedProcess[str]:
        options = [f"-var={name}={value}" for name, value in variables.items()]
        return self.run("plan", "-input=false", "-lock=false", "-out=plan.bin", *options)

    def planned(self) -> dict[str, Any]:
        shown = self.run("show", "-json", "plan.bin")
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))


def terraform_version(terraform: str) -> tuple[int, ...]:
    printed = subprocess.run(
        [terraform, "version", "-json"], capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
    )  # fmt: skip
    version = json.loads(printed.stdout)["terraform_version"]
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


#: Points the provider at moto and replaces the S3 backend with a local one (an
#: override file: Terraform merges it over the configuration's own blocks).
OVERRIDE = """
terraform {
  backend "local" {}
}

provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {
%s
  }
}
"""

SERVICES = ("sts", "ec2", "s3", "iam", "kms", "ecr", "ecs", "logs", "kafka", "elbv2")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    terraform = terraform_binary()
    if terraform is None:
        pytest.skip("no terraform binary on PATH (or TERRAFORM): validate and plan need one")
    if terraform_version(terraform) < (1, 10):
        pytest.skip(f"{terraform} is older than 1.10, which the configuration requires")
    if not (PROVIDER_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(
            f"no AWS provider in {PROVIDER_MIRROR} (TF_PROVIDER_MIRROR), and none can be "
            "downloaded here: validate and plan need it"
        )
    root = tmp_path_factory.mktemp("infra")
    directory = root / "infra"
    shutil.copytree(
        INFRA,
        directory,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", "terraform.tfvars", "backend.hcl"
        ),
    )
    config = root / "terraformrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{PROVIDER_MIRROR}"\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )
    with moto_server() as endpoint:
        endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in SERVICES)
        (directory / "emulator_override.tf").write_text(OVERRIDE % endpoints)
        space = Workspace(directory, terraform_env(config), terraform)
        for where, args in ((directory, ()), (directory / "bootstrap", ("-backend=false",))):
            init = space.run("init", "-input=false", *args, where=where)
            assert init.returncode == 0, init.stdout + init.stderr
        yield space


def test_terraform_validate_accepts_both_configurations(workspace: Workspace) -> None:
    """`terraform validate` passes on infra/ and infra/bootstrap/ with the real AWS provider's
    schema."""
    for where in (workspace.directory, workspace.directory / "bootstrap"):
        result = workspace.run("validate", where=where)
        assert result.returncode == 0, result.stdout + result.stderr


def resources(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    planned = plan["planned_values"]["root_module"]["resources"]
    return {r["address"]: r.get("values", {}) for r in planned if r["mode"] == "managed"}


def outputs(plan: dict[str, Any]) -> dict[str, Any]:
    return {name: o.get("value") for name, o in plan["planned_values"]["outputs"].items()}


BASE = {"image_tag": "0123abc", "dashboard_allowed_cidrs": '["203.0.113.0/24"]'}


def test_plan_with_defaults_creates_msk_and_the_flow_log(workspace: Workspace) -> None:
    """A plan with only the required variables: MSK, the flow log in AWS's format, and the bucket,
    lake and log prefixes."""
    result = workspace.plan(**BASE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    plan = workspace.planned()
    planned = resources(plan)
    bucket = f"flowlogs-{ACCOUNT}-{REGION}"
    assert outputs(plan)["logs_bucket"] == bucket
    assert outputs(plan)["lake_uri"] == f"s3://{bucket}/lake"
    assert outputs(plan)["flow_logs_uri"] == f"s3://{bucket}/AWSLogs/{ACCOUNT}/vpcflowlogs"

    flow_log = planned['aws_flow_log.vpc["platform"]']
    assert flow_log["log_format"].startswith("${version} ${account-id} ${interface-id}")
    assert "${vpc-id}" in flow_log["log_format"] and "$$" not in flow_log["log_format"]
    assert flow_log["destination_options"][0]["file_format"] == "plain-text"
    assert flow_log["max_aggregation_interval"] == 60

    kafka = planned["aws_msk_cluster.kafka[0]"]
    assert kafka["number_of_broker_nodes"] == 2
    assert kafka["encryption_info"][0]["encryption_in_transit"][0]["in_cluster"] is True
    properties = planned["aws_msk_configuration.kafka[0]"]["server_properties"]
    assert "default.replication.factor=2" in properties
    assert "auto.create.topics.enable=false" in properties

    listener = planned["aws_lb_listener.http"]
    assert listener["default_action"][0]["type"] == "forward"
    assert "aws_lb_listener.https[0]" not in planned

    key_policy = json.loads(planned["aws_kms_key.data"]["policy"])
    for statement in key_policy["Statement"]:
        if statement["Action"] == "kms:*":
            assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        else:
            assert "Service" in statement["Principal"] and statement["Condition"]
    services = {s["Principal"].get("Service") for s in key_policy["Statement"]}
    assert "delivery.logs.amazonaws.com" in services


def test_plan_with_an_existing_kafka_and_a_certificate(workspace: Workspace) -> None:
    """With kafka_bootstrap no MSK is planned and Kafka egress goes to its ports only; with a
    certificate port 80 redirects to HTTPS."""
    result = workspace.plan(
        **BASE,
        kafka_bootstrap="b-1.kafka.example:9092,b-2.kafka.example:9094",
        kafka_cidrs='["10.9.0.0/16"]',
        certificate_arn=f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    planned = resources(workspace.planned())
    assert not [address for address in planned if "msk" in address]
    egress = {
        a: v
        for a, v in planned.items()
        if a.startswith("aws_vpc_security_group_egress_rule.client_to_kafka")
    }
    assert sorted((v["from_port"], v["cidr_ipv4"]) for v in egress.values()) == [
        (9092, "10.9.0.0/16"), (9092, "10.9.0.0/16"), (9094, "10.9.0.0/16"), (9094, "10.9.0.0/16"),
    ]  # fmt: skip
    redirect = planned["aws_lb_listener.http"]["default_action"][0]
    assert redirect["type"] == "redirect" and redirect["redirect"][0]["protocol"] == "HTTPS"
    https = planned["aws_lb_listener.https[0]"]
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    ports = sorted(
        v["from_port"]
        for a, v in planned.items()
        if a.startswith("aws_vpc_security_group_ingress_rule.alb_from_allowed")
    )
    assert ports == [80, 443]


def test_plan_refuses_invalid_variables(workspace: Workspace) -> None:
    """Variable validation stops a plan with a `latest` tag, more workers than partitions, a lake
    inside AWSLogs/, Kafka without its networks, or no allowed network."""
    result = workspace.plan(
        image_tag="latest",
        worker_count="7",
        lake_prefix="AWSLogs/lake",
        kafka_bootstrap="b-1.kafka.example:9092",
        dashboard_allowed_cidrs="[]",
    )
    assert result.returncode != 0
    for variable in (
        "image_tag",
        "worker_count",
        "lake_prefix",
        "kafka_cidrs",
        "dashboard_allowed_cidrs",
    ):
        assert f"{variable}:" in result.stderr, (variable, result.stderr[-3000:])
