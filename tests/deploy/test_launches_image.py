"""The launches job's image (deploy/launches/Dockerfile), assembled and run without Docker.

No Docker engine is reachable here. The image is ``FROM scratch`` plus one directory that
its builder stage assembles with two scripts and pip, so this module assembles the same
directory the same way: ``deploy/common/rootfs.sh`` unpacks the same Debian 12 packages,
pip installs the same requirements file with ``--no-deps``, ``deploy/common/trim.sh``
trims it, and pip installs
the ``streams`` wheel with ``--no-deps``. The image's uncompressed size is then the size
of that directory as a layer (a tar stream), and the job runs from it under ``chroot`` as
uid 10001, with ``/dev`` and ``/proc`` mounted as a container runtime would: it sees only
the image's files, never this virtualenv.

Needs a Debian 12 host (this project's machines and CI): ``rootfs.sh`` fetches the
runtime's packages with ``apt-get download``. Running the job needs root, for ``chroot``
and the mounts (CI runs as root).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from streams.launches.transform import SCHEMA
from tests.integration.s3_server import empty_bucket, moto_server, s3
from tests.support.images import (
    BASE_IMAGE_BYTES,
    BUDGET_BYTES,
    COMMON,
    SITE,
    USER,
    assemble_rootfs,
    in_image,
    layer_size,
    needs_debian_12,
    needs_root,
    run,
)
from tests.support.launches import SAMPLE, Reply, api

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "launches"
#: rootfs.sh and trim.sh, shared with the flow-logs images (deploy/flowlogs/Dockerfile).
DOCKERFILE = DEPLOY / "Dockerfile"
REQUIREMENTS = DEPLOY / "requirements.txt"
FIXTURE = SAMPLE

#: The environment the Dockerfile's runtime stage sets (its ENV and USER); the test
#: checks that the Dockerfile still says so, and runs the job with it.
IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "HOME": "/nonexistent",  # what Docker sets from /etc/passwd for uid 10001
}
BUCKET = "launches-image-test"


pytestmark = needs_debian_12


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's filesystem, built by the Dockerfile's builder steps in their order."""
    work = tmp_path_factory.mktemp("launches-image")
    root = work / "rootfs"
    assemble_rootfs(root, "launches")
    site = root / SITE
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q")
    run(
        *pip,
        "--no-deps",
        "--only-binary=:all:",
        "--no-compile",
        "--target",
        site,
        "-r",
        REQUIREMENTS,
    )
    run("sh", COMMON / "trim.sh", site)
    # The build context holds pyproject.toml and streams/ only (.dockerignore); the
    # wheel is built from a copy, as in the builder, so the work tree gets no build/.
    source = work / "src"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(
        ROOT / "streams", source / "streams", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    run(*pip, "--no-deps", "--no-compile", "--target", site, source)
    return root


def _breakdown(root: Path) -> dict[str, int]:
    """Bytes per part: the Debian runtime, then each installed distribution with its
    metadata (read from the .dist-info RECORD files' top-level names)."""
    site = root / SITE
    parts: dict[str, list[Path]] = {}
    for info in sorted(site.glob("*.dist-info")):
        name = info.name.split("-")[0]
        records = (info / "RECORD").read_text().split()
        tops = {line.split(",")[0].split("/")[0] for line in records} - {"..", "."}
        parts[name] = sorted(site / top for top in tops if (site / top).exists())
    sizes = {name: layer_size(root, only=paths) for name, paths in parts.items()}
    everything = layer_size(root)
    sizes["debian runtime (glibc, libstdc++, OpenSSL, Python 3.11)"] = everything - sum(
        sizes.values()
    )
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def test_image_is_under_the_size_budget(image_root: Path) -> None:
    """The image (scratch plus the assembled layer) is under 200 MB uncompressed."""
    total = BASE_IMAGE_BYTES + layer_size(image_root)
    parts = "\n".join(
        f"{size / 1e6:8.1f} MB  {name}" for name, size in _breakdown(image_root).items()
    )
    report = f"{total / 1e6:.1f} MB uncompressed:\n{parts}"
    print(report)
    assert total < BUDGET_BYTES, report


def test_dockerfile_builds_what_is_measured() -> None:
    """The Dockerfile runs the scripts and requirements measured here, FROM scratch, as
    uid 10001, with the environment and entry point the job is run with below."""
    text = DOCKERFILE.read_text()
    runtime = text[text.index("FROM scratch AS runtime") :]
    for step in (
        "COPY deploy/common/rootfs.sh /build/rootfs.sh",
        "sh /build/rootfs.sh /rootfs launches",
        f"sh /build/trim.sh /rootfs/{SITE}",
        f"--target /rootfs/{SITE} -r /build/requirements.txt",
        f"--target /rootfs/{SITE} /src",
        "COPY deploy/launches/requirements.txt deploy/common/trim.sh /build/",
    ):
        assert step in " ".join(text.replace("\\\n", " ").split()), step
    assert "COPY --from=builder /rootfs /" in runtime
    assert f"USER {USER}" in runtime
    assert 'ENTRYPOINT ["python", "-m", "streams.launches"]' in runtime
    for name, value in IMAGE_ENV.items():
        if name != "HOME":
            assert f"{name}={value}" in runtime, name


def test_trimmed_image_loads_everything_it_keeps(image_root: Path) -> None:
    """Every pyarrow extension module left after trimming imports, TLS has CA
    certificates, the platform's other dependencies are absent, and the code is
    read-only to the job's user."""
    check = """
import importlib, importlib.util, os, pathlib, ssl
import pyarrow
kept = sorted(p.name.split(".")[0] for p in pathlib.Path(pyarrow.__file__).parent.glob("*.so"))
for name in kept:
    importlib.import_module("pyarrow." + name)
for absent in ("faust", "numpy", "duckdb", "rocksdict", "aiohttp", "pip"):
    assert importlib.util.find_spec(absent) is None, absent
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 100
assert os.getuid() == 10001
assert not os.access(pathlib.Path(pyarrow.__file__).parent, os.W_OK)
print(len(kept), "modules")
"""
    done = in_image(image_root, "python", "-c", check, env=IMAGE_ENV)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) >= 10


@pytest.fixture
def launches_api() -> Iterator[str]:
    """A local HTTP server answering with the v4 sample fixture; yields its URL."""
    with api(Reply(200, FIXTURE.read_bytes())) as served:
        yield served.url


@pytest.mark.integration
@needs_root
def test_job_runs_from_the_trimmed_image(
    image_root: Path, launches_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m streams.launches`, run from the image's files alone, writes the
    launches to S3 as a Parquet object that pyarrow reads back with the job's schema."""
    with moto_server() as endpoint:
        empty_bucket(endpoint, BUCKET, monkeypatch)
        env = {
            **IMAGE_ENV,
            "SPACEX_API_URL": launches_api,
            "S3_BUCKET": BUCKET,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        done = in_image(image_root, "python", "-m", "streams.launches", env=env)
        assert done.returncode == 0, done.stderr
        body = s3(endpoint).get_object(Bucket=BUCKET, Key="launches.parquet")["Body"].read()

    table = pq.read_table(io.BytesIO(body))
    assert table.schema.equals(SCHEMA)
    fixture_flights = {launch["flight_number"] for launch in json.loads(FIXTURE.read_text())}
    written = table.column("flight_number").to_pylist()
    assert written and set(written) <= fixture_flights
    assert f"{table.num_rows} rows written" in done.stdout


def test_requirements_pin_what_the_project_pins() -> None:
    """The image's requirements are pyproject.toml's pins, and the packages they pull in
    are at the versions the project's environment resolved: the image runs what the
    tests ran."""
    import tomllib
    from importlib.metadata import version

    pinned = {
        name.lower(): pin
        for name, _, pin in (
            line.split(";")[0].strip().partition("==")
            for line in REQUIREMENTS.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {spec.split("[")[0].split("==")[0].lower(): spec.split("==")[1] for spec in project}
    shared = set(pinned) & set(declared)
    assert {"pyarrow", "pydantic", "pydantic-settings", "prometheus-client"} <= shared
    assert {name: pinned[name] for name in shared} == {name: declared[name] for name in shared}
    assert {name: pinned[name] for name in pinned} == {name: version(name) for name in pinned}
