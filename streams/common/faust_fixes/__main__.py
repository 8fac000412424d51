"""``python -m streams.common.faust_fixes``: the versions and fingerprints found.

For an upgrade: every row must read "ok" before the corrections can run; a row that
does not names the function to re-read against its correction.
"""

from __future__ import annotations

import sys

from streams.common.faust_fixes import batch_intake, recovery_intake
from streams.common.faust_fixes.end_offsets import END_OFFSETS
from streams.common.faust_fixes.fetch_wait import FETCH_WAIT
from streams.common.faust_fixes.patching import Original, PatchMismatchError, describe
from streams.common.faust_fixes.rebalance import PATCHES
from streams.common.faust_fixes.versions import SUPPORTED, installed_versions


def main() -> int:
    found = installed_versions()
    same = True
    for name, supported in SUPPORTED.items():
        ok = found[name] == supported
        same &= ok
        sys.stdout.write(f"{'ok ' if ok else 'BAD'} {name} {found[name]} (supported {supported})\n")
    rows = describe((*PATCHES, END_OFFSETS, FETCH_WAIT)) + [
        (code.where, str(code.expected), _found(code.owner, code.name))
        for code in (*batch_intake.CONTRACT, *recovery_intake.CONTRACT)
    ]
    for where, expected, actual in rows:
        ok = expected == actual
        same &= ok
        sys.stdout.write(f"{'ok ' if ok else 'BAD'} {where}\n")
        if not ok:
            sys.stdout.write(f"    expected {expected}\n    found    {actual}\n")
    return 0 if same else 1


def _found(owner: type, name: str) -> str:
    try:
        return str(Original.of(vars(owner)[name]))
    except (KeyError, PatchMismatchError) as exc:
        return f"(missing: {exc})"


if __name__ == "__main__":
    raise SystemExit(main())
