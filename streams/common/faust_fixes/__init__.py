"""Every correction of a Faust or aiokafka internal, in one place, made to fail loudly.

Rules for what lives here (docs/faust-corrections.md has each defect as an upstream bug
report, ready to file):

- **Version gate** (``versions.py``): installing any correction refuses to start unless
  faust-streaming and aiokafka are exactly the releases the corrections were written
  for. No escape hatch.
- **Identity checks** (``patching.py``): before patching, each replaced function, and
  each function a correction relies on, must have the expected module, qualified name
  and source hash; after patching, the class attribute must be the correction and the
  classes the libraries instantiate must resolve to it.
- **Counters** (``counters.py``): ``streams_faust_fix_<what>_total`` of the records
  dropped, partitions sought back, acknowledgements ignored, commits held back and end
  offsets corrected; ``make_app`` registers them on every app's registry.
- **Pure rules apart from wiring**: ``delivery_order.py`` is the offset-order rule
  (no Faust import); ``rebalance.py`` and ``end_offsets.py`` are the patches.

The corrections:

- ``install_rebalance_fixes()`` (``rebalance.py``): records in offset order across
  rebalances, Faust's read-offset filter off, acknowledgements of skipped records
  ignored, no commit past an unacknowledged record. Installed by every app.
- ``install_end_offset_correction()`` (``end_offsets.py``): the embedded broker's
  under-reported end offsets, corrected from a Fetch's high watermark. Installed only
  when ``KafkaSettings.correct_end_offsets`` is on (the embedded broker).
- ``RecoveryIntake(app)`` (``recovery_intake.py``): not a defect but Faust's cost: an
  app's tables restored from their changelogs in runs, not one record at a time
  through the stream path (69 us a record). ``make_app`` installs it unless
  ``STREAMS_RECOVERY_INTAKE`` is off.
- ``set_fetch_max_wait(app, ms)`` (``fetch_wait.py``): the fetch wait Faust hard-codes
  (1,500 ms), for an app that answers requests; ``make_app(fetch_max_wait_ms=...)``.
"""

from __future__ import annotations

from streams.common.faust_fixes.counters import Fix, counts, register_fix_metrics
from streams.common.faust_fixes.end_offsets import (
    end_offset_correction,
    install_end_offset_correction,
    is_end_offset_correction_installed,
    uninstall_end_offset_correction,
)
from streams.common.faust_fixes.fetch_wait import set_fetch_max_wait
from streams.common.faust_fixes.patching import PatchMismatchError
from streams.common.faust_fixes.rebalance import install_rebalance_fixes
from streams.common.faust_fixes.recovery_intake import RecoveryIntake
from streams.common.faust_fixes.versions import SUPPORTED, UnsupportedVersionError

__all__ = [
    "SUPPORTED",
    "Fix",
    "PatchMismatchError",
    "RecoveryIntake",
    "UnsupportedVersionError",
    "counts",
    "end_offset_correction",
    "install_end_offset_correction",
    "install_rebalance_fixes",
    "is_end_offset_correction_installed",
    "register_fix_metrics",
    "set_fetch_max_wait",
    "uninstall_end_offset_correction",
]
