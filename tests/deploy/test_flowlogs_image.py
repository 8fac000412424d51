"""The flow-logs images (deploy/flowlogs/Dockerfile), assembled and run without Docker.

No Docker engine is reachable here. Both images are ``FROM scratch`` plus layers that the
builder stage assembles in directories with two shell scripts and pip, so this module
assembles the same directories the same way: ``deploy/common/rootfs.sh`` unpacks the
Debian 12 packages, pip installs each requirements file with ``--no-deps`` into its
layer, ``deploy/common/trim.sh`` trims each, and pip installs the ``streams`` wheel with
``--no-deps`` into the code layer. An image's uncompressed size is the sum of its
layers as tar streams (``base`` is the same layer in both). Each image's filesystem (its
layers stacked, as a container runtime stacks them) then runs the processes under
``chroot`` as uid 10001: the reader and a worker against an embedded broker started
outside, on 127.0.0.1, ingesting generated flow logs into the lake; the dashboard over
that lake. They see only the images' files, never this virtualenv.

Needs a Debian 12 host (this project's machines and CI): ``rootfs.sh`` fetches the
runtime's packages with ``apt-get download``. Running the processes needs root, for
``chroot`` and the mounts (CI runs as root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import distribution, version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from producers.flowlogs import Options, write
from streams.common.broker import EmbeddedBroker
from tests.support.images import (
    BASE_IMAGE_BYTES,
    BUDGET_BYTES,
    COMMON,
    SITE,
    assemble_rootfs,
    in_image,
    isolated,
    layer_size,
    needs_debian_12,
    needs_root,
    run,
)
from tests.support.ports import free_port
from tests.support.workers import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "flowlogs"
DOCKERFILE = DEPLOY / "Dockerfile"
#: Where the Dockerfile installs packages (Debian's Python reads it by default).
#: The layers whose packages a requirements file lists, and the file.
REQUIREMENTS = {
    "base": DEPLOY / "requirements.txt",
    "pipeline": DEPLOY / "requirements-pipeline.txt",
    "dashboard": DEPLOY / "requirements-dashboard.txt",
}
#: Each image's layers, bottom up, as its stage in the Dockerfile stacks them. ``data``
#: is the pipeline's two empty writable directories under /var/lib.
IMAGES = {
    "pipeline": ("base", "pipeline", "data", "code"),
    "dashboard": ("base", "dashboard", "code"),
}
#: pyproject.toml's dependencies that an image leaves out, with what only they need,
#: because none of its processes imports them (they run below from its files alone).
#: The dashboard runs no Faust app, writes no lake and reads no worker's settings: no
#: Faust (nor its aiohttp), no Kafka client, no numpy, no settings or metrics libraries.
NOT_IN_IMAGE = {
    "pipeline": {"dash", "plotly"},
    "dashboard": {
        "faust-streaming", "mode-streaming", "aiokafka", "rocksdict", "uvloop", "numpy",
        "pydantic-settings", "prometheus-client",
    },
}  # fmt: skip
#: What the dashboard's process must not import (the pipeline's packages, absent from
#: its image), by top-level module name.
PIPELINE_ONLY_MODULES = (
    "numpy", "faust", "mode", "aiohttp", "aiokafka", "rocksdict", "uvloop", "pydantic_settings",
    "prometheus_client",
)  # fmt: skip
#: Declared dependencies the images leave out on purpose: nothing imports them at run
#: time (deploy/flowlogs/requirements-*.txt say why).
LEFT_OUT = {"cython", "setuptools"}

#: What the images measure (linux/amd64: 284.4 and 257.1 MB, the dashboard without numpy
#: and Faust) plus ~2 %: a package that grows, a trim that stops working or a package
#: back in the shared layer fails here, and the figures in docs/flowlogs.md move with
#: these.
CEILING_BYTES = {"pipeline": 290 * 1000 * 1000, "dashboard": 262 * 1000 * 1000}

#: The environment the Dockerfile's `base` stage sets (ENV), plus the HOME Docker sets
#: from /etc/passwd for uid 10001.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONSAFEPATH": "1",
    "HOME": "/nonexistent",
}
#: What the `pipeline` stage adds.
PIPELINE_ENV = {
    **BASE_ENV,
    "STREAMS_DATA_DIR": "/var/lib/streams",
    "FLOWLOGS_LAKE": "/var/lib/flowlogs-lake",
    "WEB_BIND": "0.0.0.0",
    "WEB_PORT": "6066",
}
PIPELINE_WORKDIR = "/var/lib/streams"
PIPELINE_ENTRYPOINT = ("python", "-m", "streams.flowlogs")
DASHBOARD_WORKDIR = "/tmp"
DASHBOARD_ENTRYPOINT = (
    "python", "-m", "streams.flowlogs.dashboard", "dashboard",
    "--host", "0.0.0.0", "--port", "8050",
)  # fmt: skip
LAKE = "/var/lib/flowlogs-lake"
#: The generated hour the reader ingests: small, so that the run takes seconds.
SOURCE_OPTIONS = Options(
    start=datetime(2026, 11, 30, tzinfo=UTC), hours=1, flows_per_hour=2000, seed=13, port_scans=1
)


pytestmark = needs_debian_12


# ---- assembling the layers ------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    #: Each layer's files, as the image sees them (paths relative to the image's /).
    layers: dict[str, Path]
    #: Each image's filesystem: its layers stacked (hard links to the layers' files).
    roots: dict[str, Path]


def _pip_install(target: Path, *args: str | Path) -> None:
    # pip's own cache (~/.cache/pip) makes every run after the first one offline.
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q")
    run(*pip, "--no-deps", "--no-compile", "--target", target, *args)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Every layer, built by the Dockerfile's builder steps (the independent ones at
    once), and each image's filesystem."""
    work = tmp_path_factory.mktemp("flowlogs-images")
    layers = {name: work / "layers" / name for name in ("base", "pipeline", "dashboard", "code")}

    def packages(layer: str) -> None:
        site = layers[layer] / SITE
        _pip_install(site, "--only-binary=:all:", "-r", REQUIREMENTS[layer])
        run("sh", COMMON / "trim.sh", site)

    def base() -> None:
        assemble_rootfs(layers["base"], "flowlogs")
        packages("base")

    def code() -> None:
        # The build context holds pyproject.toml and streams/ only (.dockerignore); the
        # wheel is built from a copy, as in the builder, so the work tree gets no build/.
        source = work / "src"
        source.mkdir()
        shutil.copy(ROOT / "pyproject.toml", source)
        shutil.copytree(
            ROOT / "streams",
            source / "streams",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        _pip_install(layers["code"] / SITE, source)
        shutil.rmtree(layers["code"] / SITE / "bin")

    steps: list[Callable[[], None]] = [
        base,
        lambda: packages("pipeline"),
        lambda: packages("dashboard"),
        code,
    ]
    with ThreadPoolExecutor(len(steps)) as pool:
        for done in [pool.submit(step) for step in steps]:
            done.result()

    # COPY --from=builder --chown=10001:10001 /layers/data/ /var/lib/
    layers["data"] = work / "layers" / "data"
    for name in ("streams", "flowlogs-lake"):
        directory = layers["data"] / "var" / "lib" / name
        directory.mkdir(parents=True)
        directory.chmod(0o750)
        if os.geteuid() == 0:
            os.chown(directory, 10001, 10001)

    roots = {}
    for image, stack in IMAGES.items():
        root = work / "images" / image
        root.mkdir(parents=True)
        for layer in stack:
            run("cp", "-a", "--link", f"{layers[layer]}/.", root)
        for mountpoint in ("dev", "proc", "sys"):  # a container runtime's, in no layer
            (root / mountpoint).mkdir()
        roots[image] = root
    return Built(layers, roots)


# ---- measuring ------------------------------------------------------------------------


def _parts(layer: Path) -> dict[str, int]:
    """Bytes per installed distribution of a layer, with its metadata (read from the
    .dist-info RECORD files' top-level names)."""
    site = layer / SITE
    parts: dict[str, list[Path]] = {}
    for info in sorted(site.glob("*.dist-info")):
        name = info.name.split("-")[0]
        records = (info / "RECORD").read_text().split()
        tops = {line.split(",")[0].split("/")[0] for line in records} - {"..", "."}
        parts[name] = sorted(site / top for top in tops if (site / top).exists())
    return {name: layer_size(layer, only=paths) for name, paths in parts.items()}


@pytest.fixture(scope="module")
def layer_bytes(built: Built) -> dict[str, int]:
    return {name: layer_size(path) for name, path in built.layers.items()}


def _image_bytes(layer_bytes: dict[str, int], image: str) -> int:
    return BASE_IMAGE_BYTES + sum(layer_bytes[layer] for layer in IMAGES[image])


def test_image_sizes(built: Built, layer_bytes: dict[str, int]) -> None:
    """Each image's uncompressed size, per layer and per package, stays within what it
    measured when its trims were written."""
    lines = []
    for image, stack in IMAGES.items():
        lines.append(f"{image}: {_image_bytes(layer_bytes, image) / 1e6:.1f} MB uncompressed")
        for layer in stack:
            lines.append(f"  layer {layer}: {layer_bytes[layer] / 1e6:.1f} MB")
    shared = layer_bytes["base"]
    lines.append(f"shared by both (the base layer, stored and pulled once): {shared / 1e6:.1f} MB")
    for layer in ("base", "pipeline", "dashboard", "code"):
        parts = _parts(built.layers[layer])
        if layer == "base":
            parts["debian runtime (glibc, libstdc++, OpenSSL, Python 3.11)"] = layer_bytes[
                "base"
            ] - sum(parts.values())
        lines.append(f"layer {layer}:")
        lines += [
            f"  {size / 1e6:8.1f} MB  {name}"
            for name, size in sorted(parts.items(), key=lambda kv: -kv[1])
            if size >= 500_000
        ]
    report = "\n".join(lines)
    print(report)
    for image in IMAGES:
        assert _image_bytes(layer_bytes, image) < CEILING_BYTES[image], report


@pytest.mark.xfail(
    strict=True,
    reason="not met: the pipeline image is 284 MB, the dashboard's 257 MB. pyarrow (97 MB), "
    "DuckDB (69 MB) and Debian's Python (37 MB) are 203 MB together, and every process "
    "imports them; the workers add numpy (45 MB), the dashboard Plotly and Dash "
    "(docs/flowlogs.md, Images)",
)
def test_images_are_under_the_issue_budget(layer_bytes: dict[str, int]) -> None:
    """The issue's target: each image under 200 MB uncompressed."""
    sizes = {image: _image_bytes(layer_bytes, image) for image in IMAGES}
    assert all(size < BUDGET_BYTES for size in sizes.values()), sizes


def test_dockerfile_builds_what_is_measured() -> None:
    """The Dockerfile runs the scripts and requirements measured here, stacks the layers
    measured here in each stage, FROM scratch, as uid 10001, with the environment,
    working directories and entry points the processes are run with below."""
    text = DOCKERFILE.read_text()
    flat = " ".join(text.replace("\\\n", " ").split())
    for step in (
        "COPY deploy/common/rootfs.sh /build/rootfs.sh",
        "sh /build/rootfs.sh /layers/base flowlogs",
        "COPY deploy/common/trim.sh deploy/flowlogs/requirements.txt "
        "deploy/flowlogs/requirements-pipeline.txt deploy/flowlogs/requirements-dashboard.txt",
        f"--target /layers/base/{SITE} -r /build/requirements.txt",
        f"--target /layers/pipeline/{SITE} -r /build/requirements-pipeline.txt",
        f"--target /layers/dashboard/{SITE} -r /build/requirements-dashboard.txt",
        f"--target /layers/code/{SITE} /src",
        f"rm -rf /layers/code/{SITE}/bin",
        "install -d -m 0750 /layers/data/streams /layers/data/flowlogs-lake",
    ):
        assert step in flat, step
    for layer in ("base", "pipeline", "dashboard"):
        assert f"sh /build/trim.sh /layers/{layer}/{SITE}" in flat, layer
        assert flat.count(f"--target /layers/{layer}/{SITE}") == 1, layer
    assert flat.count("--no-deps --only-binary=:all: --no-compile") == 3

    stages = {
        name: image for image, name in re.findall(r"^FROM (\S+) AS (\w+)$", text, re.MULTILINE)
    }
    assert stages == {"builder": "python:3.11-slim-bookworm", "base": "scratch"} | {
        image: "base" for image in IMAGES
    }
    body = {
        name: text.split(f" AS {name}\n", 1)[1].split("\nFROM ", 1)[0] for name in ("base", *IMAGES)
    }
    assert re.findall(r"^COPY --from=builder (.*)$", body["base"], re.MULTILINE) == [
        "/layers/base /"
    ]
    assert "USER 10001:10001" in body["base"]
    for name, value in BASE_ENV.items():
        if name != "HOME":
            assert f"{name}={value}" in body["base"], name
    for image, stack in IMAGES.items():
        copies = re.findall(r"^COPY --from=builder (.*)$", body[image], re.MULTILINE)
        expected = {
            "pipeline": [
                "/layers/pipeline /",
                "--chown=10001:10001 /layers/data/ /var/lib/",
                "/layers/code /",
            ],
            "dashboard": ["/layers/dashboard /", "/layers/code /"],
        }[image]
        assert copies == expected, image
        assert len(copies) + 1 == len(stack), image
    assert "USER" not in body["pipeline"] + body["dashboard"]  # 10001, from base
    for name, value in PIPELINE_ENV.items():
        if name not in BASE_ENV:
            assert f"{name}={value}" in body["pipeline"], name
    assert f"WORKDIR {PIPELINE_WORKDIR}" in body["pipeline"]
    assert f"WORKDIR {DASHBOARD_WORKDIR}" in body["dashboard"]
    assert f"ENTRYPOINT {json.dumps(list(PIPELINE_ENTRYPOINT))}" in body["pipeline"]
    assert 'CMD ["worker", "-l", "info"]' in body["pipeline"]
    assert f"ENTRYPOINT {json.dumps(list(DASHBOARD_ENTRYPOINT))}" in body["dashboard"]
    assert f'CMD ["--source", "{LAKE}"]' in body["dashboard"]
    assert "HEALTHCHECK" in body["pipeline"] and "HEALTHCHECK" in body["dashboard"]


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            name, _, pin = spec.partition("==")
            assert pin, f"{path.name}: {spec} is not pinned exactly"
            pins[canonicalize_name(name)] = pin
    return pins


def _closure(roots: list[Requirement], leave_out: set[str]) -> set[str]:
    """Every distribution ``roots`` need, with the extras they ask for, by the metadata of
    the installed versions, short of ``leave_out`` and what only they need."""
    wanted: set[str] = set()
    queue = [(canonicalize_name(r.name), set(r.extras)) for r in roots]
    while queue:
        name, extras = queue.pop()
        if name in wanted or name in leave_out:
            continue
        wanted.add(name)
        for line in distribution(name).requires or []:
            requirement = Requirement(line)
            markers = [{"extra": extra} for extra in ("", *sorted(extras))]
            if requirement.marker is None or any(requirement.marker.evaluate(m) for m in markers):
                queue.append((canonicalize_name(requirement.name), set()))
    return wanted


def test_requirements_pin_what_the_project_pins() -> None:
    """The images' requirements are pyproject.toml's pins and the versions the project's
    environment resolved (the images run what the tests ran), and they are exactly what
    pyproject.toml's dependencies need, each image leaving out only what none of its
    processes imports."""
    files = {layer: _pins(path) for layer, path in REQUIREMENTS.items()}
    everything: dict[str, str] = {}
    for pins in files.values():
        assert not set(pins) & set(everything), "a package pinned in two layers"
        everything |= pins
    assert everything == {name: version(name) for name in everything}

    declared = [
        Requirement(spec)
        for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        if name in everything:
            assert str(requirement.specifier) == f"=={everything[name]}", name
    for image, stack in IMAGES.items():
        listed = {name for layer in stack if layer in files for name in files[layer]}
        assert listed == _closure(declared, LEFT_OUT | NOT_IN_IMAGE[image]), image


# ---- running from the images' files -----------------------------------------------------


@dataclass
class Process:
    """One long-running process started from an image's files; stopped with its
    process group (unshare, the shell, chroot's Python: all started here)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> bytes:
        """``path``'s body, asked only while the process runs: one that exited fails
        the test at once with the end of its log."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            said = self.log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{said}")
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return bytes(response.read())

    def json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass(frozen=True)
class Running:
    worker: Process
    reader: Process
    dashboard: Process
    records: int  # log records in the generated source: flows, NODATA and SKIPDATA rows


@pytest.fixture(scope="module")
def running(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An embedded broker on 127.0.0.1, outside; the image's reader and worker on a
    generated hour of flow logs, with the deployment's settings; the dashboard image
    over the lake they write (a volume both mount at /var/lib/flowlogs-lake)."""
    if os.geteuid() != 0:
        pytest.skip("chroot and the /dev, /proc mounts need root (CI runs as root)")
    logs = tmp_path_factory.mktemp("flowlogs-image-logs")
    pipeline, dashboard = built.roots["pipeline"], built.roots["dashboard"]
    written = write(SOURCE_OPTIONS, str(pipeline / "var/lib/flowlogs-source"))
    (dashboard / LAKE.lstrip("/")).mkdir(parents=True)
    started: list[Process] = []
    with EmbeddedBroker(port=free_port(), log_path=logs / "broker.log") as broker:
        try:
            settings = {
                "KAFKA_BOOTSTRAP": broker.bootstrap,
                "KAFKA_CORRECT_END_OFFSETS": "true",  # the embedded broker's defect
                "FLOWLOGS_SOURCE": "/var/lib/flowlogs-source",
                "FLOWLOGS_PARTITIONS": "2",
                "FLOWLOGS_POLL_SECONDS": "1",
                "FLOWLOGS_SETTLE_SECONDS": "0",
                "FLOWLOGS_BATCH_SECONDS": "0.2",
            }
            processes = {}
            for name in ("worker", "reader"):
                port = free_port()  # the host's network: each its own port
                command = (*PIPELINE_ENTRYPOINT, name, "-l", "info")
                processes[name] = Process(
                    name,
                    isolated(pipeline, command, workdir=PIPELINE_WORKDIR),
                    {**PIPELINE_ENV, **settings, "WEB_PORT": str(port)},
                    logs / f"{name}.log",
                    port,
                )
            port = free_port()
            arguments: tuple[str, ...] = ("--source", LAKE, "--port", str(port))
            arguments += ("--alerts-url", processes["worker"].url)
            processes["dashboard"] = Process(
                "dashboard",
                isolated(
                    dashboard,
                    (*DASHBOARD_ENTRYPOINT, *arguments),
                    workdir=DASHBOARD_WORKDIR,
                    binds=((pipeline / LAKE.lstrip("/"), LAKE),),
                ),
                dict(BASE_ENV),
                logs / "dashboard.log",
                port,
            )
            for process in processes.values():
                started.append(process.start())
            for process in started:
                wait_until(partial(process.get, "/health"), timeout=90, what=process.name)
            yield Running(**processes, records=written.flows)
        finally:
            for process in started:
                process.stop()


@needs_root
def test_trimmed_images_load_everything_they_keep(built: Built) -> None:
    """In each image: every extension module left after trimming and stripping imports
    (so every library they link loads), DuckDB (and the pipeline's numpy) computes, TLS
    has CA certificates, what the image leaves out is absent (numpy, Faust and aiohttp
    from the dashboard's), and the code is read-only to the processes' user (the
    pipeline's data directory is not)."""
    check = """
import importlib, importlib.util, os, pathlib, ssl, sys
site = pathlib.Path("/usr/local/lib/python3.11/dist-packages")
modules = sorted(
    ".".join(p.relative_to(site).parts).split(".cpython-311")[0].split(".abi3")[0]
    for p in site.rglob("*.so") if ".cpython-311" in p.name or ".abi3." in p.name
)
for name in modules:
    importlib.import_module(name)
import duckdb, pyarrow
assert duckdb.sql("SELECT sum(x) FROM range(10) t(x)").fetchall() == [(45,)]
present, absent = sys.argv[1].split(","), sys.argv[2].split(",")
for name in present:
    importlib.import_module(name)
for name in absent:
    assert importlib.util.find_spec(name) is None, name
if "numpy" in present:
    assert int(sys.modules["numpy"].arange(10).sum()) == 45
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 100
assert os.getuid() == 10001
assert not os.access(pathlib.Path(pyarrow.__file__).parent, os.W_OK)
assert os.access("/var/lib/streams", os.W_OK) == (sys.argv[3] == "pipeline")
print(len(modules), "extension modules")
"""
    never = "Cython,setuptools,pip"
    pipeline_only = ",".join(PIPELINE_ONLY_MODULES)
    modules = {
        "pipeline": (f"{pipeline_only},iptocc,orjson", f"dash,plotly,flask,{never}"),
        "dashboard": ("dash,plotly,flask,iptocc,orjson", f"{pipeline_only},{never}"),
    }
    for image, (present, absent) in modules.items():
        done = in_image(
            built.roots[image], "python", "-c", check, present, absent, image, env=BASE_ENV
        )
        assert done.returncode == 0, f"{image}: {done.stderr}"
        # Enough that the search found them all (today 26 and over 60), not none.
        assert int(done.stdout.split()[0]) >= {"pipeline": 50, "dashboard": 20}[image], image


def test_dashboard_imports_none_of_the_pipelines_packages(tmp_path: Path) -> None:
    """The dashboard's modules, imported and its app built in a fresh interpreter of the
    project's environment with numpy hidden (as in its image: pyarrow, DuckDB and Plotly
    then do without it), import none of the packages only the pipeline image has."""
    check = """
import importlib, pkgutil, sys
sys.modules["numpy"] = None  # importing it raises ImportError, as in the image
import streams.flowlogs.dashboard as dashboard
for module in pkgutil.iter_modules(dashboard.__path__, dashboard.__name__ + "."):
    if not module.name.endswith(".__main__"):  # it runs the server
        importlib.import_module(module.name)
from streams.flowlogs.dashboard.app import create_app
create_app(sys.argv[1], refresh_seconds=0)
print(" ".join(sorted({name.split(".")[0] for name, m in sys.modules.items() if m})))
"""
    done = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = set(done.stdout.split())
    assert {"dash", "duckdb", "pyarrow", "streams"} <= imported, imported
    assert not imported & set(PIPELINE_ONLY_MODULES), imported & set(PIPELINE_ONLY_MODULES)


def _records(summary: dict[str, int]) -> int:
    return summary["flows"] + summary["nodata"] + summary["skipdata"]


@pytest.mark.integration
@needs_root
def test_reader_and_worker_run_from_the_pipeline_image(running: Running) -> None:
    """`python -m streams.flowlogs reader` and `... worker`, run from the pipeline
    image's files alone, answer /health and ingest every record of the source into the
    lake, which the worker's DuckDB views count."""
    worker = running.worker
    summary = wait_until(
        lambda: (s := worker.json("/flowlogs/summary")) and _records(s) == running.records and s,
        timeout=90,
        what=f"{running.records} records in /flowlogs/summary",
    )
    assert summary["flows"] > 0
    top = worker.json("/flowlogs/top?field=dstport&by=flows&limit=5")
    assert len(top) == 5
    assert sum(hour["flows"] for hour in worker.json("/flowlogs/hourly")) == summary["flows"]
    assert b"streams_flowlogs_" in running.reader.get("/metrics")


@pytest.mark.integration
@needs_root
def test_dashboard_runs_from_the_dashboard_image(running: Running) -> None:
    """`networkflow dashboard`, run from the dashboard image's files alone, serves its
    page and every browser file Dash may ask for (the trimmed bundles are the ones it
    needs), finds the lake, and renders it: the figures, and the worker's flow count."""
    from dash import _dash_renderer, dash_table, dcc, html

    from streams.flowlogs.dashboard import ids
    from streams.flowlogs.dashboard.inputs import values_of
    from streams.flowlogs.dashboard.requests import render_request
    from streams.flowlogs.dashboard.selection import Controls

    wait_until(
        lambda: (s := running.worker.json("/flowlogs/summary")) and _records(s) == running.records,
        timeout=90,
        what="the lake",
    )
    flows = running.worker.json("/flowlogs/summary")["flows"]
    dashboard = running.dashboard
    page = dashboard.get("/").decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert len(scripts) >= 8
    # What the page loads, and what Dash's components load later (their async chunks,
    # plotly.js): every production file the components register.
    components: list[Any] = [dcc, html, dash_table, _dash_renderer]
    registered = [
        f"/_dash-component-suites/{r['namespace']}/{path}"
        for r in [
            *(resource for module in components for resource in module._js_dist),
            *_dash_renderer._js_dist_dependencies,
        ]
        for path in _production_paths(r.get("relative_package_path", []))
        if not path.endswith(".map")  # source maps: only a browser's developer tools
    ]
    registered.append("/_dash-component-suites/plotly/package_data/plotly.min.js")
    for url in [*scripts, *registered]:
        assert len(dashboard.get(url)) > 100, url

    tick = f"{ids.TICK}.n_intervals"
    watched = dashboard.post(
        "/_dash-update-component",
        {
            "output": f"{ids.LAKE_VERSION}.data",
            "outputs": {"id": ids.LAKE_VERSION, "property": "data"},
            "inputs": [{"id": ids.TICK, "property": "n_intervals", "value": 1}],
            "state": [
                {"id": ids.LAKE_VERSION, "property": "data", "value": None},
                {"id": ids.STATUS, "property": "className", "value": "status"},
            ],
            "changedPropIds": [tick],
        },
    )
    lake = watched["response"][ids.LAKE_VERSION]["data"]
    assert lake["error"] is None and lake["version"] is not None, lake
    rendered = dashboard.post(
        "/_dash-update-component", render_request(lake, values_of(Controls()))
    )["response"]
    figures = [v["figure"] for v in rendered.values() if "figure" in v]
    assert len(figures) >= 8 and all(figure["data"] for figure in figures)
    assert rendered[ids.CARD_FLOWS]["children"] == f"{flows:,}"


def _production_paths(path: str | list[str] | dict[str, Any]) -> list[str]:
    """The files a resource entry names for production (its ``prod`` ones when it names
    development bundles too)."""
    if isinstance(path, dict):
        return _production_paths(path["prod"])
    return [path] if isinstance(path, str) else list(path)
