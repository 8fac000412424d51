"""The address a worker advertises when it runs as an ECS task (``WEB_HOST=ecs-task``).

Routed views forward a request to the worker owning its key, at the host that worker
advertises. On Fargate that is the task's private address, known only once the task
runs: the ECS agent publishes it at the task metadata endpoint (version 4), whose URL
it puts in ``ECS_CONTAINER_METADATA_URI_V4``. The images have no shell to read it
before the worker starts, so the worker reads it itself, once, at start.
"""

from __future__ import annotations

import json
import urllib.request

#: The WEB_HOST value that asks for the task's own address.
ECS_TASK = "ecs-task"
METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"


class TaskAddressError(RuntimeError):
    """The task's address cannot be read: not on ECS, or an answer without one."""


def task_address(uri: str | None, timeout: float = 5.0) -> str:
    """The first private IPv4 address of this container's task network (awsvpc), from
    the metadata endpoint at ``uri``."""
    if not uri:
        raise TaskAddressError(
            f"WEB_HOST={ECS_TASK} asks for the ECS task's address, but "
            f"{METADATA_VARIABLE} is not set: this does not run as an ECS task"
        )
    try:
        with urllib.request.urlopen(uri, timeout=timeout) as answer:
            networks = json.loads(answer.read(1_000_000))["Networks"]
        return str(networks[0]["IPv4Addresses"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise TaskAddressError(f"no task address from {uri}: {exc!r}") from exc


def advertised_host(web_host: str, metadata_uri: str | None) -> str:
    """``web_host`` itself, or the task's address when it is ``ecs-task``."""
    return task_address(metadata_uri) if web_host == ECS_TASK else web_host
