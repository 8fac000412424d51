"""The version gate: the corrections run only on the releases they were written for.

Every correction replaces or relies on private code of one release of Faust or aiokafka.
On another release that code may have moved, changed or been fixed, and a correction
applied blindly could then undo a fix or lose records silently. So installing any of
them first checks the installed distributions (``importlib.metadata``) and refuses to
start on anything but the exact versions below. There is deliberately no way around
it: an upgrade means re-reading each patched function against the new release
(docs/faust-corrections.md lists them with the upstream reports), then updating the
fingerprints in the patch modules and this table together.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Final

#: Distribution name -> the one version the corrections were written and tested for.
SUPPORTED: Final[Mapping[str, str]] = {
    "faust-streaming": "0.15.3",
    "aiokafka": "0.14.0",
    # The batch intake relies on mode's flow control (batch_intake.py).
    "mode-streaming": "0.7.1",
}


class UnsupportedVersionError(RuntimeError):
    """Faust or aiokafka is not the release the corrections were written for."""


def installed_versions() -> dict[str, str | None]:
    """The installed version of each distribution the corrections patch (None: absent)."""
    found: dict[str, str | None] = {}
    for distribution in SUPPORTED:
        try:
            found[distribution] = version(distribution)
        except PackageNotFoundError:
            found[distribution] = None
    return found


def check_versions(found: Mapping[str, str | None] | None = None) -> None:
    """Raise ``UnsupportedVersionError`` unless every distribution is the supported one."""
    found = installed_versions() if found is None else found
    wrong = [
        f"{name} {found.get(name) or '(not installed)'} (supported: {supported})"
        for name, supported in SUPPORTED.items()
        if found.get(name) != supported
    ]
    if wrong:
        made_for = " and ".join(f"{name} {v}" for name, v in SUPPORTED.items())
        raise UnsupportedVersionError(
            f"streams.common.faust_fixes patches internals of {made_for} only, and found "
            f"{'; '.join(wrong)}. Refusing to start: re-check every correction against the "
            "new release (docs/faust-corrections.md), then update "
            "streams/common/faust_fixes/versions.py and the patches' fingerprints."
        )
