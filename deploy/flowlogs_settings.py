"""The settings of deploy/flowlogs.sh: its flags and variables, read and checked.

:func:`parse` reads them into a :class:`Config`, refusing an invalid one with
:class:`deploy.output.InvalidSetting` before anything runs: the region, the Terraform
directory and the files given to it, the terraform binary (not in a dry run, which
runs none), the image tag (a Docker tag Terraform accepts; by default the checkout's
commit, refused when the checkout has uncommitted changes), and the wait's seconds.
Relative paths are relative to the repository root, where the command runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.output import (
    InvalidSetting,
    SettingsParser,
    git_commit,
    positive_seconds,
    region_setting,
)

ROOT = Path(__file__).resolve().parents[1]
#: The dashboard image's tag is the pipeline's plus this; both must be Docker tags.
DASHBOARD_SUFFIX = "-dashboard"
#: A Docker tag (128 characters at most, the suffix included), as infra/ validates it.
TAG = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{127 - len(DASHBOARD_SUFFIX)}}}")

# (flag, variable, default, help)
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--terraform-dir", "DEPLOY_TERRAFORM_DIR", "infra", "the flow-logs Terraform configuration"),
    (
        "--backend-config",
        "DEPLOY_BACKEND_CONFIG",
        "",
        "the file for `terraform init -backend-config` (none given: "
        "<terraform-dir>/backend.hcl when it exists)",
    ),
    ("--var-file", "DEPLOY_VAR_FILE", "", "a .tfvars file for both applies"),
    ("--timeout", "DEPLOY_TIMEOUT_SECONDS", "900", "longest wait for the services (s)"),
    ("--poll-seconds", "DEPLOY_POLL_SECONDS", "10", "between two looks at the services (s)"),
)


@dataclass(frozen=True)
class Config:
    region: str
    terraform: str  # as given (TERRAFORM, else "terraform"): what a dry run shows
    terraform_path: str  # the binary run; "" in a dry run
    directory: Path
    backend_config: Path | None
    var_file: Path | None
    image_tag: str
    timeout: float
    poll_seconds: float
    dry_run: bool


def parse(argv: Sequence[str] | None, description: str) -> Config:
    """The settings, each checked; InvalidSetting (argparse's own errors: exit 2)."""
    parser = SettingsParser(
        prog="deploy/flowlogs.sh",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, variable, default, text in OPTIONS:
        # Empty is unset, as for the launches deploy and the processes' own settings.
        given = os.environ.get(variable) or default
        shown = f"{variable}, {default}" if default else variable
        parser.add_argument(flag, default=given, help=f"{text} [{shown}]")
    parser.add_argument(
        "--region", help="[AWS_REGION, else AWS_DEFAULT_REGION, else the profile's]"
    )
    parser.add_argument("--image-tag", help="[IMAGE_TAG, else the checkout's git commit]")
    parser.add_argument(
        "--dry-run", action="store_true", help="print every command and AWS call, run none"
    )
    args = parser.parse_args(argv)
    region = region_setting(args.region)
    directory = existing(args.terraform_dir, "--terraform-dir", directory=True)
    if not any(directory.glob("*.tf")):
        raise InvalidSetting(f"--terraform-dir {args.terraform_dir}: no .tf file in it")
    implicit_backend = directory / "backend.hcl"
    if args.backend_config:
        backend: Path | None = existing(args.backend_config, "--backend-config")
    else:
        backend = implicit_backend if implicit_backend.is_file() else None
    var_file = existing(args.var_file, "--var-file") if args.var_file else None
    terraform = os.environ.get("TERRAFORM") or "terraform"
    terraform_path = "" if args.dry_run else shutil.which(terraform)
    if terraform_path is None:
        raise InvalidSetting(
            f"no terraform binary: {terraform!r} is not an executable on PATH (set TERRAFORM)"
        )
    return Config(
        region=region,
        terraform=terraform,
        terraform_path=terraform_path,
        directory=directory,
        backend_config=backend,
        var_file=var_file,
        image_tag=image_tag(args.image_tag or os.environ.get("IMAGE_TAG")),
        timeout=positive_seconds("--timeout", args.timeout),
        poll_seconds=positive_seconds("--poll-seconds", args.poll_seconds),
        dry_run=args.dry_run,
    )


def existing(given: str, flag: str, directory: bool = False) -> Path:
    path = (ROOT / given).resolve()
    if not (path.is_dir() if directory else path.is_file()):
        raise InvalidSetting(f"{flag} {given}: no such {'directory' if directory else 'file'}")
    return path


def image_tag(given: str | None) -> str:
    """``given``, checked; else the checkout's commit. Tags are immutable (infra/ecr.tf):
    a commit's tag on an image of uncommitted code would name the wrong bytes for good."""
    if not given:
        commit = git_commit(ROOT)
        if commit is None:
            raise InvalidSetting("no image tag: not a git checkout; pass --image-tag")
        if commit.dirty:
            raise InvalidSetting(
                f"no image tag: the checkout has uncommitted changes, so its commit "
                f"{commit.sha} does not name what would be built; commit them or pass "
                "--image-tag"
            )
        given = commit.sha
    if given == "latest" or not TAG.fullmatch(given):
        raise InvalidSetting(
            f"--image-tag {given!r}: a Docker tag (letters, digits, _ . -, at most "
            f"{128 - len(DASHBOARD_SUFFIX)} characters) other than latest"
        )
    return given
