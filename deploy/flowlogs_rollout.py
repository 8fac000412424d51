"""The wait for ECS services to roll out: each stable, and the targets of the ones behind
a load balancer healthy in each of their target groups.

A service is stable, as AWS's own ``services_stable`` waiter has it, when one deployment
is left and it runs as many tasks as it wants; here its rollout must also be COMPLETED
(when ECS reports one), since a circuit breaker may still roll it back. A rollout ECS
marks FAILED ends the wait at once (:class:`RolloutFailed`). Tasks running are not yet
serving: for a service behind a load balancer the wait also asks the load balancer
(DescribeTargetHealth) until each target group has a healthy target per desired task.
Every call goes through :meth:`deploy.aws.Aws.call`, so a dry run reports each of them
once, answered with placeholders of a stable service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from deploy.aws import Aws, DeployError, Response, sleep_until

#: DescribeServices takes at most this many services a call.
SERVICES_PER_CALL = 10


class RolloutFailed(DeployError):
    """ECS gave a service's rollout up (its deployment circuit breaker)."""


@dataclass(frozen=True)
class Service:
    name: str
    desired: int
    running: int
    deployments: int
    rollout: str  # the primary deployment's rolloutState; "" when ECS reports none
    reason: str
    target_groups: tuple[str, ...]

    @property
    def stable(self) -> bool:
        rolled_out = self.rollout in ("", "COMPLETED")
        return self.deployments == 1 and rolled_out and self.running == self.desired

    def __str__(self) -> str:
        rollout = f", rollout {self.rollout}" if self.rollout else ""
        plural = "s" if self.deployments != 1 else ""
        return (
            f"{self.name}: {self.running}/{self.desired} tasks running, "
            f"{self.deployments} deployment{plural}{rollout}"
        )


@dataclass(frozen=True)
class Targets:
    group: str  # its ARN
    healthy: int
    others: tuple[str, ...]  # each target not healthy: its state and reason

    def __str__(self) -> str:
        name = self.group.rsplit(":", 1)[-1]  # targetgroup/<name>/<id>
        total = self.healthy + len(self.others)
        if not total:
            return f"{name}: no target registered"
        others = f" ({', '.join(self.others)})" if self.others else ""
        return f"{name}: {self.healthy} of {total} target{'s' if total > 1 else ''} healthy{others}"


def describe_services(
    aws: Aws, cluster: str, names: Sequence[str], balanced: Collection[str] = ()
) -> list[Service]:
    """The services (``balanced``: those a dry run's placeholders put behind a balancer)."""
    found: list[Service] = []
    for start in range(0, len(names), SERVICES_PER_CALL):
        batch = list(names[start : start + SERVICES_PER_CALL])
        placeholder = {"services": [stable_placeholder(name, name in balanced) for name in batch]}
        answer = aws.call(
            "ecs", "describe_services", {"cluster": cluster, "services": batch}, placeholder
        )
        failures = answer.get("failures", [])
        if failures:
            missing = ", ".join(f"{f.get('arn', '?')} ({f.get('reason', '?')})" for f in failures)
            raise DeployError(f"ECS has no such service in cluster {cluster}: {missing}")
        for described in answer.get("services", []):
            if described.get("status") != "ACTIVE":  # DRAINING or INACTIVE: being deleted
                raise DeployError(f"ECS service {described['serviceName']} is not ACTIVE")
            found.append(service(described))
    return found


def service(described: Response) -> Service:
    deployments: list[dict[str, Any]] = described.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    return Service(
        name=str(described["serviceName"]),
        desired=int(described.get("desiredCount", 0)),
        running=int(described.get("runningCount", 0)),
        deployments=len(deployments),
        rollout=str(primary.get("rolloutState", "")),
        reason=str(primary.get("rolloutStateReason", "")),
        target_groups=tuple(
            str(b["targetGroupArn"])
            for b in described.get("loadBalancers", [])
            if b.get("targetGroupArn")
        ),
    )


def stable_placeholder(name: str, balanced: bool) -> Response:
    group = f"<target group of {name}>"
    primary = {"status": "PRIMARY", "rolloutState": "COMPLETED"}
    return {
        "serviceName": name,
        "status": "ACTIVE",
        "desiredCount": 1,
        "runningCount": 1,
        "deployments": [primary],
        "loadBalancers": [{"targetGroupArn": group}] if balanced else [],
    }


def target_health(aws: Aws, group: str) -> Targets:
    placeholder = {"TargetHealthDescriptions": [{"TargetHealth": {"State": "healthy"}}]}
    answer = aws.call("elbv2", "describe_target_health", {"TargetGroupArn": group}, placeholder)
    states = [d.get("TargetHealth", {}) for d in answer.get("TargetHealthDescriptions", [])]
    healthy = [s for s in states if s.get("State") == "healthy"]
    return Targets(
        group=group,
        healthy=len(healthy),
        others=tuple(
            " ".join(filter(None, (s.get("State", "?"), s.get("Reason"))))
            for s in states
            if s.get("State") != "healthy"
        ),
    )


def wait_until_stable(
    aws: Aws,
    cluster: str,
    names: Sequence[str],
    balanced: Collection[str],
    timeout: float,
    poll: float,
    on_change: Callable[[str], None],
) -> None:
    """Return once every service in ``names`` is stable and those in ``balanced`` have
    healthy targets (``on_change`` hears each new state); RolloutFailed at once on a
    failed rollout; DeployError when not all are there within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}

    def report(key: str, state: str) -> None:
        if seen.get(key) != state:
            seen[key] = state
            on_change(state)

    while True:
        waiting: list[str] = []
        for found in describe_services(aws, cluster, names, balanced):
            report(found.name, str(found))
            if found.rollout == "FAILED":
                raise RolloutFailed(f"{found.name}: rollout FAILED: {found.reason or 'no reason'}")
            if not found.stable:
                waiting.append(str(found))
            elif found.name in balanced:
                if not found.target_groups:
                    raise DeployError(f"ECS service {found.name} has no load balancer")
                for group in found.target_groups:
                    targets = target_health(aws, group)
                    report(group, f"{found.name}: {targets}")
                    if targets.healthy < max(1, found.desired):
                        waiting.append(f"{found.name}: {targets}")
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise DeployError(f"not stable within {timeout:g} s: {'; '.join(waiting)}")
        sleep_until(deadline, poll)
