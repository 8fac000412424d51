"""Deploy the flow-logs platform (infra/) to AWS: build and push its images, apply the
Terraform, wait for the services, print the dashboard's URL. This module is the
command: its entry point and the deploy's flow. Its settings are read and checked in
deploy/flowlogs_settings.py; terraform runs through deploy/flowlogs_terraform.py; the
wait is deploy/flowlogs_rollout.py.

    deploy/flowlogs.sh [--dry-run] [--image-tag TAG] [--region REGION] [--var-file FILE] ...

Steps: terraform init (with the backend configuration); a targeted apply of the ECR
repository alone (Terraform owns it); the image tags looked up in it: when both are
there they are deployed as they are (tags are immutable: the same bytes), else a Docker
engine logs in, builds the two targets of deploy/flowlogs/Dockerfile and pushes them,
<repository>:<tag> (pipeline) and <repository>:<tag>-dashboard; terraform apply with
image_tag; the wait, bounded by --timeout, for every service of the `services` output
to be stable and the dashboard's load-balancer targets healthy; the dashboard's URL.
Terraform is TERRAFORM, else `terraform` on PATH. ``--dry-run`` prints every command
and AWS call, one JSON line each, and runs none: it needs no credentials, no terraform
and no docker.

Exit codes: 0 deployed and serving; 1 a service's rollout failed (ECS's circuit breaker
gave it up); 2 an invalid setting (before anything runs); 3 a deploy step failed (a
terraform, docker or AWS error, the services not stable within --timeout, or SIGINT or
SIGTERM); 4 no Docker engine to build images the repository does not hold (the services
are then left as they were).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from deploy import aws
from deploy.aws import ACCOUNT_PLACEHOLDER, DeployError, error_code
from deploy.command import run_deploy
from deploy.flowlogs_rollout import RolloutFailed, wait_until_stable
from deploy.flowlogs_settings import DASHBOARD_SUFFIX, ROOT, Config, parse
from deploy.flowlogs_terraform import REPOSITORY_TARGETS, Terraform
from deploy.output import (
    FAILED,
    NO_DOCKER,
    OK,
    Output,
    ignore_interrupts,
)

DOCKERFILE = "deploy/flowlogs/Dockerfile"
#: (build target, tag suffix): infra/ecs.tf runs <repository>:<image_tag>, the pipeline.
IMAGES = (("pipeline", ""), ("dashboard", DASHBOARD_SUFFIX))
#: The service behind the load balancer, by its key in the `services` output.
DASHBOARD = "dashboard"
REPOSITORY_HOST = re.compile(r"[^.]+\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")


class NoDockerEngine(DeployError):
    """An image to build, and no Docker engine to build it."""


def main(argv: Sequence[str] | None = None) -> int:
    return run_deploy(
        argv,
        __doc__.split("\n\n", 2)[2],
        parse,
        deploy,
        {NoDockerEngine: NO_DOCKER, RolloutFailed: FAILED},
    )


def deploy(config: Config, out: Output) -> int:
    api = aws.Aws(config.region, config.dry_run, out.call)
    terraform = Terraform(
        config.terraform,
        config.terraform_path,
        config.directory,
        config.dry_run,
        out.call,
        config.backend_config,
        config.var_file,
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    out.note(
        f"{'dry run: ' if config.dry_run else ''}flow-logs platform ({config.directory}) to "
        f"{config.region}, image tag {config.image_tag}"
        f"{f' (endpoint {endpoint})' if endpoint else ''}"
    )
    terraform.init()
    terraform.apply(config.image_tag, REPOSITORY_TARGETS)
    repository = repository_url(terraform.outputs(placeholders(config.region)), config.region)
    out.step(f"ECR repository {repository}")
    publish(config, api, out, repository)

    terraform.apply(config.image_tag)
    outputs = terraform.outputs(placeholders(config.region))
    cluster, services, url = rollout_outputs(outputs)
    names = list(services.values())
    out.step(f"waiting up to {config.timeout:g} s for {', '.join(names)} in {cluster}")
    try:
        wait_until_stable(
            api,
            cluster,
            names,
            [services[DASHBOARD]],
            config.timeout,
            config.poll_seconds,
            out.step,
        )
    except KeyboardInterrupt:
        ignore_interrupts()
        raise DeployError(
            "interrupted while waiting for the services; nothing was stopped: ECS goes on "
            "rolling them out, and its circuit breaker rolls a failing one back"
        ) from None
    out.step(f"dashboard: {url}")
    return OK


def publish(config: Config, api: aws.Aws, out: Output, repository: str) -> None:
    """Both images in the repository: pushed, or found there already."""
    tags = [config.image_tag + suffix for _, suffix in IMAGES]
    missing = missing_tags(api, repository.split("/", 1)[1], tags)
    if not missing:
        out.step(
            f"{' and '.join(tags)} already in the repository: deployed as they are "
            "(its tags are immutable: the same bytes), not rebuilt"
        )
        return
    if config.dry_run:
        out.note("the login, builds and pushes below run only for tags the repository lacks")
    elif why_not := aws.docker_engine():
        raise NoDockerEngine(
            f"no Docker engine is reachable ({why_not}) to build {', '.join(missing)}, "
            f"which {repository} does not hold; nothing was applied but the repository. "
            "Start Docker, or pass --image-tag with a tag already pushed"
        )
    docker = aws.Docker(config.dry_run, out.call)
    aws.registry_login(api, docker, repository)
    for target, suffix in IMAGES:
        if config.image_tag + suffix in missing:
            image = f"{repository}:{config.image_tag}{suffix}"
            aws.build_and_push(docker, image, str(ROOT / DOCKERFILE), str(ROOT), target)
            out.step(f"pushed {image}")


def missing_tags(api: aws.Aws, repository: str, tags: Sequence[str]) -> list[str]:
    """The ``tags`` the repository does not hold (in a dry run, all: nothing is looked up)."""
    missing = []
    for tag in tags:
        params = {"repositoryName": repository, "imageIds": [{"imageTag": tag}]}
        try:
            found = api.call("ecr", "describe_images", params)
        except ClientError as exc:
            if error_code(exc) != "ImageNotFoundException":
                raise
            found = {}
        if not found.get("imageDetails"):
            missing.append(tag)
    return missing


def placeholders(region: str) -> dict[str, Any]:
    """A dry run's `terraform output`: the names infra/ gives, its `name` variable unknown."""
    return {
        "ecr_repository_url": f"{ACCOUNT_PLACEHOLDER}.dkr.ecr.{region}.amazonaws.com/<name>",
        "ecs_cluster": "<name>",
        "services": {kind: f"<name>-{kind}" for kind in ("reader", "worker", DASHBOARD)},
        "dashboard_url": "<dashboard_url>",
    }


def repository_url(outputs: dict[str, Any], region: str) -> str:
    url = outputs.get("ecr_repository_url")
    if not isinstance(url, str) or "/" not in url:
        raise DeployError(f"terraform output ecr_repository_url is {url!r}, not a repository")
    host = REPOSITORY_HOST.fullmatch(url.split("/", 1)[0])
    # Terraform's region is its own (var.region); every call here goes to the deploy's.
    if host and host.group(1) != region:
        raise DeployError(
            f"the repository is in {host.group(1)} (Terraform's region) but the deploy's "
            f"region is {region}: pass --region {host.group(1)}"
        )
    return url


def rollout_outputs(outputs: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    """(cluster, services by kind, dashboard URL) from `terraform output`."""
    cluster, services, url = (outputs.get(k) for k in ("ecs_cluster", "services", "dashboard_url"))
    if not isinstance(services, dict) or not all(isinstance(v, str) for v in services.values()):
        raise DeployError(f"terraform output services is {services!r}, not a map of names")
    if DASHBOARD not in services or not isinstance(cluster, str) or not isinstance(url, str):
        raise DeployError(
            "terraform output lacks ecs_cluster, services.dashboard or dashboard_url: "
            "is --terraform-dir the flow-logs configuration?"
        )
    return cluster, services, url


if __name__ == "__main__":
    sys.exit(main())
