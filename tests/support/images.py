"""What the image tests share: assembling an image's Debian layer with the Dockerfiles'
own script, measuring a layer as Docker stores it, and running a command inside the
assembled filesystem as the image's user (there is no Docker engine here)."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMON = ROOT / "deploy" / "common"
SITE = "usr/local/lib/python3.11/dist-packages"
USER = "10001:10001"
#: The images are FROM scratch: "an explicitly empty image" (Docker's docs, Base images).
BASE_IMAGE_BYTES = 0
#: The issues' budget, uncompressed (what `docker images` shows).
BUDGET_BYTES = 200 * 1000 * 1000


def is_debian_12() -> bool:
    try:
        return Path("/etc/debian_version").read_text().startswith("12")
    except OSError:
        return False


needs_debian_12 = pytest.mark.skipif(
    not (is_debian_12() and all(shutil.which(t) for t in ("apt-get", "dpkg-deb", "strip"))),
    reason="assembling an image needs a Debian 12 host with apt-get, dpkg-deb and strip",
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="chroot and the /dev, /proc mounts need root (CI runs as root)"
)


def run(*command: str | Path) -> None:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def assemble_rootfs(root: Path, image: str) -> None:
    """deploy/common/rootfs.sh for ``image``, as its Dockerfile runs it."""
    try:
        run("sh", COMMON / "rootfs.sh", root, image)
    except AssertionError:
        if os.geteuid() != 0:
            raise
        # Stale apt lists name versions the mirror has replaced: refresh once, as the
        # Dockerfile's `apt-get update` does before the same script.
        run("apt-get", "update", "-q")
        shutil.rmtree(root, ignore_errors=True)
        run("sh", COMMON / "rootfs.sh", root, image)


class _Counter(io.RawIOBase):
    """A write-only stream that keeps only the number of bytes written to it."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


def layer_size(root: Path, *, only: list[Path] | None = None) -> int:
    """The size of ``root`` (or of ``only``, paths under it) as an uncompressed layer:
    the tar stream Docker stores, headers and padding included."""
    counter = _Counter()
    with tarfile.open(fileobj=counter, mode="w|", format=tarfile.GNU_FORMAT) as layer:
        for path in only if only is not None else [root]:
            layer.add(path, arcname=str(path.relative_to(root)))
    return counter.count


#: Docker's WORKDIR for a process run under chroot (which starts in /): the image's own
#: Python changes directory, then becomes the command.
CHDIR_THEN_EXEC = "import os, sys; os.chdir(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[2:])"


def isolated(
    root: Path,
    command: tuple[str, ...],
    *,
    workdir: str = "/",
    binds: tuple[tuple[Path, str], ...] = (),
) -> list[str]:
    """``command`` run inside ``root`` as the image's user, in a private mount namespace
    that gets the /dev, /proc and /sys a container runtime provides (and ``binds``, the
    volumes), which vanish with the process."""
    for mountpoint in ("dev", "proc", "sys"):
        (root / mountpoint).mkdir(exist_ok=True)
    unshare, mount, chroot = (shutil.which(tool) for tool in ("unshare", "mount", "chroot"))
    assert unshare and mount and chroot, "util-linux and coreutils are needed"
    mounts = [
        f'{mount} --rbind /dev "$0/dev"',
        f'{mount} -t proc proc "$0/proc"',
        f'{mount} -t sysfs -o ro sysfs "$0/sys"',
        *(f'{mount} --bind {shlex.quote(str(source))} "$0{target}"' for source, target in binds),
    ]
    script = " && ".join([*mounts, f'exec {chroot} --userspec={USER} "$0" "$@"'])
    if workdir != "/":
        command = ("python", "-c", CHDIR_THEN_EXEC, workdir, *command)
    return [unshare, "--mount", "--fork", "--", "/bin/sh", "-c", script, str(root), *command]


def in_image(root: Path, *command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` inside ``root`` as the image's user, with only ``env``."""
    return subprocess.run(
        isolated(root, command),
        env=env,  # the image's PATH: chroot finds `python` in the image, as Docker would
        capture_output=True,
        text=True,
        timeout=120,
    )
