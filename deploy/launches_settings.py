"""The settings of deploy/launches.sh: its flags and variables, read and checked.

:data:`OPTIONS` lists every flag with its variable and default (the challenge's
pre-provisioned names); :func:`parse` reads them into a :class:`Config`, refusing an
invalid one with :class:`InvalidSetting` before any AWS call: the numbers (a Fargate
size, finite positive seconds), the network (subnet and security group ids), the
roles, the region, and the job's own settings as the job's settings class validates
them (:func:`check_job_settings`). :func:`job_environment` is the task's environment;
:func:`default_image_tag` the image tag when none is given.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from deploy import ecs
from deploy.output import (
    InvalidSetting,
    SettingsParser,
    git_commit,
    positive_seconds,
    region_setting,
)
from streams.launches.settings import DEFAULT_API_URL, LaunchesSettings

ROOT = Path(__file__).resolve().parents[1]
SUBNET = re.compile(r"subnet-[0-9a-f]+")
SECURITY_GROUP = re.compile(r"sg-[0-9a-f]+")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")

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

    def integer(self, name: str) -> int:
        return int(self.values[name])

    def listed(self, name: str) -> list[str]:
        return [item.strip() for item in self.values[name].split(",") if item.strip()]


def parse(argv: Sequence[str] | None, description: str) -> Config:
    """The settings, each checked; InvalidSetting (argparse's own errors: exit 2).
    ``description`` is the command's, shown by ``--help``."""
    parser = SettingsParser(
        prog="deploy/launches.sh",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, variable, default, text in OPTIONS:
        parser.add_argument(
            flag,
            dest=dest(flag),
            # Empty is unset, as the job reads its own variables.
            default=os.environ.get(variable) or default,
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
    for flag, variable, *_ in OPTIONS:
        if not values[dest(flag)].strip():
            raise InvalidSetting(f"{flag} ({variable}) is blank")
    # No default: the cluster, subnet and security group exist in one region only.
    region = region_setting(args.region)
    check_numbers(values)
    check_network(values)
    for flag in ("--execution-role", "--task-role"):
        role = values[dest(flag)]
        if not (ROLE_NAME.fullmatch(role) or ROLE_ARN.fullmatch(role)):
            raise InvalidSetting(f"{flag} {role!r} is neither an IAM role name nor a role ARN")
    tag = args.image_tag or os.environ.get("IMAGE_TAG") or default_image_tag()
    config = Config(region, tag, args.dry_run, args.skip_check, values)
    check_job_settings(job_environment(config))
    return config


def check_numbers(values: dict[str, str]) -> None:
    for name in ("cpu", "memory"):
        if not re.fullmatch(r"[0-9]{1,9}", values[name]):
            raise InvalidSetting(
                f"--{dest_flag(name)} must be a whole number, not {values[name]!r}"
            )
    why_not = ecs.fargate_size_error(int(values["cpu"]), int(values["memory"]))
    if why_not:
        raise InvalidSetting(f"--cpu {values['cpu']} --memory {values['memory']}: {why_not}")
    for name in ("timeout", "poll_seconds"):
        positive_seconds(f"--{dest_flag(name)}", values[name])


def check_network(values: dict[str, str]) -> None:
    if values["assign_public_ip"] not in ("ENABLED", "DISABLED"):
        raise InvalidSetting("--assign-public-ip must be ENABLED or DISABLED")
    for name, shape, example in (
        ("subnets", SUBNET, "subnet-0123abcd"),
        ("security_groups", SECURITY_GROUP, "sg-0123abcd"),
    ):
        items = [item.strip() for item in values[name].split(",")]
        if not any(items):
            raise InvalidSetting(f"--{dest_flag(name)} lists none")
        for item in items:
            if not shape.fullmatch(item):
                raise InvalidSetting(f"--{dest_flag(name)}: {item!r} is not an id like {example}")


class RegisteredSettings(LaunchesSettings):
    """The job's settings read from the registered environment alone: on Fargate the
    job sees nothing else (not the deployer's LAUNCHES_* variables)."""

    model_config = SettingsConfigDict(**{**LaunchesSettings.model_config, "extra": "ignore"})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def check_job_settings(environment: dict[str, str]) -> None:
    """The task's environment as the job will validate it, before anything is created."""
    try:
        RegisteredSettings.model_validate(environment)
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = str(error["msg"]).removeprefix("Value error, ")
        variable = str(error["loc"][0]) if error["loc"] else ""
        flags = [flag for flag, var, *_ in OPTIONS if var == variable]
        setting = f"{flags[0]} ({variable})" if flags else variable or "the job's settings"
        raise InvalidSetting(f"{setting}: the job refuses it: {reason}") from exc


def job_environment(config: Config) -> dict[str, str]:
    """The job's whole configuration. Never the endpoint: on Fargate it talks to AWS."""
    return {
        "S3_BUCKET": config["bucket"],
        "S3_KEY": config["key"],
        "AWS_REGION": config.region,
        "SPACEX_API_URL": config["spacex_api_url"],
    }


def dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def dest_flag(name: str) -> str:
    return name.replace("_", "-")


def default_image_tag() -> str:
    # The repository this deploy creates has mutable tags: a checkout with uncommitted
    # changes still gets its commit's tag, and a timestamp outside git.
    commit = git_commit(ROOT)
    return commit.sha if commit else datetime.now(UTC).strftime("%Y%m%d%H%M%S")
