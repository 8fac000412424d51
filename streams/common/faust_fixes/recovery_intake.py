"""A table's changelog restored in runs, without Faust's per-record path.

While a worker recovers its tables, Faust fetches their changelog partitions with its
ordinary fetch loop and takes every record through the per-record path a stream's
record takes (a ``ConsumerMessage``, the drain loop's ``wait_first``, the Conductor, an
``Event`` with key and value decoded for nothing, a queue, then ``_slurp_changelogs``
with a timer and two formatted log lines per record): 69 us of CPU per changelog record,
~14,000 records a second, 111 s to restore the orders worker's 1.27 M records from an
empty disk. docs/recovery-intake.md has the measurements and the design this follows.

``RecoveryIntake.take`` is called by the corrected ``_getmany`` (``rebalance.py``) with
every fetch. For the changelog partitions Recovery is actively restoring, it writes
their records to RocksDB one run per partition and fetch, with the table's own
``apply_changelog_batch`` (the data's WriteBatch first, then the persisted offset), and
moves Recovery's bookkeeping once per run. What Faust guarantees, it keeps:

- **Offset order.** A run is applied synchronously, records at or below the offset
  Recovery last applied are dropped as ``_slurp_changelogs`` drops them, and Faust's
  own buffered changelog events of the table are applied first. A partition is the
  intake's from the start of a recovery until it leaves any record to Faust's path
  (the record at the highwater, or a fetch while the flow was stopped); from then on,
  for the rest of that recovery, it is Faust's, so Faust's queue never holds a record
  older than one the intake writes.
- **The end of recovery is Faust's.** The highwater record (and anything after it)
  stays in the fetch for Faust's path, whose ``_slurp_changelogs`` applies it and ends
  recovery as it always does; the intake never moves ``active_offsets`` to a
  highwater, so recovery cannot end early, nor wait for its 5 s idle timeout.
- **Stale fetches.** A fetch issued before a new generation or a recovery (re)start (a
  token taken before the fetch differs after it) is not applied: its records of
  restoring partitions are dropped and each partition sought back to where Recovery
  restarts (re-reading is always safe). A revocation stops the flow first: nothing is
  taken then, and Faust's ``getmany`` drops the fetch as usual. (aiokafka may begin a
  rejoin, after a failed heartbeat, before Faust's revocation runs on the event loop:
  a fetch returned then is applied, in order, to a partition the worker still holds.)
- **A kill between a run's data and its offset** leaves the persisted offset behind the
  data (RocksDB writes the data's batch first): the next recovery re-applies from the
  offset, the same records in the same order. Until it has, the store holds no prefix
  of the log, but nothing reads it before recovery ends.
- Only tables on Faust's RocksDB store with no ``on_changelog_event`` callback, only
  active partitions (standbys keep Faust's path), and never in a transactional app.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from time import monotonic
from typing import Any

from faust.app.base import App
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.types import TP

from streams.common.faust_fixes.counters import Fix, count
from streams.common.faust_fixes.patching import Code, Original, PatchMismatchError, check_all
from streams.common.faust_fixes.rebalance import (
    RECOVERY_INTAKE_ATTRIBUTE,
    install_rebalance_fixes,
)

log = logging.getLogger(__name__)


class Change:
    """One changelog record as Faust's RocksDB store reads an event: ``.message.tp``,
    ``.offset``, ``.partition``, ``.key`` and ``.value`` (raw bytes; the store never
    decodes them)."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: Any, record: Any) -> None:
        self.tp, self.partition = tp, tp.partition
        self.offset, self.key, self.value = record.offset, record.key, record.value

    @property
    def message(self) -> Change:
        return self


class RecoveryIntake:
    """Restores ``app``'s tables' active changelog partitions from each fetch."""

    def __init__(self, app: Any) -> None:
        check_all(CONTRACT)
        install_rebalance_fixes()
        recovery = app.tables.recovery
        if type(recovery) is not Recovery:
            raise PatchMismatchError(
                f"{app}'s table recovery is {type(recovery)!r}, not Faust's Recovery, "
                "whose bookkeeping the recovery intake keeps"
            )
        self.app = app
        #: Partitions handed to Faust's path in the recovery started at ``_started``.
        self._faust_owned: set[Any] = set()
        self._started: float | None = None
        setattr(app, RECOVERY_INTAKE_ATTRIBUTE, self)

    def token(self) -> tuple[Any, Any]:
        """What a fetch must still find when it returns for the intake to apply it."""
        return self.app.consumer_generation_id, self.app.tables.recovery._recovery_started_at

    async def take(
        self,
        consumer: Any,
        records: MutableMapping[Any, list[Any]],
        active: Any,
        before: tuple[Any, Any],
    ) -> None:
        """Apply the restoring partitions' records of ``records`` and remove them, but
        for each partition's highwater record and after, which stay for Faust."""
        recovery = self.app.tables.recovery
        if not recovery.in_recovery or self.app.in_transaction:
            return
        if recovery._recovery_started_at != self._started:
            self._started, self._faust_owned = recovery._recovery_started_at, set()
        mine = [
            fetched
            for fetched in records
            if fetched in recovery.active_tps and (active is None or fetched in active)
        ]
        if not mine:
            return
        if not (consumer.flow_active and self.app.flow_control.is_active()):
            # A revocation: Faust's getmany drops the fetch. Should the flow be back on
            # by the time it looks, these records are in its queue: the partitions are
            # its own until the next recovery, which never applies older after newer.
            self._faust_owned.update(TP(fetched.topic, fetched.partition) for fetched in mine)
            return
        if before != self.token():
            # The fetch straddled a rebalance or a recovery restart: its position may
            # not be the one Recovery restarts from.
            for fetched in mine:
                del records[fetched]
                tp = TP(fetched.topic, fetched.partition)
                restart = max(recovery.active_offsets[tp], 0)
                await consumer._seek(tp, restart)
                log.info("%s: fetched before a recovery restart: read again from %d", tp, restart)
            count(Fix.STALE_CHANGELOG_FETCHES_DROPPED)
            return
        for fetched in mine:
            tp = TP(fetched.topic, fetched.partition)
            if tp not in self._faust_owned:
                self._restore(consumer, recovery, tp, fetched, records)

    def _restore(
        self,
        consumer: Any,
        recovery: Any,
        tp: Any,
        fetched: Any,
        records: MutableMapping[Any, list[Any]],
    ) -> None:
        table = recovery.tp_to_table.get(tp)
        highwater = recovery.active_highwaters.get(tp)
        if table is None or highwater is None or not supported(table):
            self._faust_owned.add(tp)
            return
        run = records.pop(fetched)
        seen = recovery.active_offsets[tp]
        changes = [Change(tp, record) for record in run if seen < record.offset < highwater]
        rest = [record for record in run if record.offset >= highwater]
        if rest:
            records[fetched] = rest
            self._faust_owned.add(tp)
        if not changes:
            return
        buffered = recovery.buffers.get(table)
        if buffered:  # Faust's own older events of this table go first
            table.apply_changelog_batch(buffered)
            buffered.clear()
        started = monotonic()
        table.apply_changelog_batch(changes)
        now = monotonic()
        recovery.active_offsets[tp] = changes[-1].offset
        recovery._active_events_received_at[tp] = now
        recovery._last_flush_at = now
        # Samples of time per record, for Faust's "estimated time remaining" log.
        samples = recovery._processing_times
        samples.append((now - started) / len(changes))
        while len(samples) > recovery.num_samples_required_for_estimate:
            samples.popleft()
        self.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
        count(Fix.CHANGELOG_RECORDS_RESTORED, len(changes))


def supported(table: Any) -> bool:
    """Whether ``table`` restores as Faust's RocksDB store would from raw records: its
    store writes the records' bytes, and nothing watches its changelog events."""
    return (
        type(table.data) is RocksDBStore
        and getattr(table, "_on_changelog_event", None) is None
        and type(table).on_changelog_event is Collection.on_changelog_event
        and type(table).apply_changelog_batch is Collection.apply_changelog_batch
    )


_RECOVERY = "faust.tables.recovery"

#: What the intake replicates (the slurp loop's offset filter and bookkeeping) or
#: relies on (docs/recovery-intake.md, section 3.4).
CONTRACT: tuple[Code, ...] = (
    Code(
        Recovery,
        "_slurp_changelogs",
        Original(_RECOVERY, "Recovery._slurp_changelogs", "7825c7e50f766d5a"),
    ),
    Code(
        Recovery, "flush_buffers", Original(_RECOVERY, "Recovery.flush_buffers", "6fa9c17f1071018c")
    ),
    Code(
        Recovery,
        "_restart_recovery",
        Original(_RECOVERY, "Recovery._restart_recovery", "6bd8a8558a2dffe4"),
    ),
    Code(
        Recovery,
        "_set_recovery_started",
        Original(_RECOVERY, "Recovery._set_recovery_started", "bcfebf81ae13fc75"),
    ),
    Code(
        Recovery,
        "_set_recovery_ended",
        Original(_RECOVERY, "Recovery._set_recovery_ended", "84badf3f2cfe0d02"),
    ),
    Code(
        Recovery, "need_recovery", Original(_RECOVERY, "Recovery.need_recovery", "fd1dc345b5d5e121")
    ),
    Code(
        Recovery,
        "active_remaining",
        Original(_RECOVERY, "Recovery.active_remaining", "0dcc38568ad5018b"),
    ),
    Code(
        Recovery, "_seek_offsets", Original(_RECOVERY, "Recovery._seek_offsets", "19598ca63d94d250")
    ),
    Code(
        Recovery, "on_rebalance", Original(_RECOVERY, "Recovery.on_rebalance", "aa4d997a1795ceae")
    ),
    Code(
        Collection,
        "apply_changelog_batch",
        Original("faust.tables.base", "Collection.apply_changelog_batch", "b980a78d3ae9b1e8"),
    ),
    Code(
        RocksDBStore,
        "apply_changelog_batch",
        Original("faust.stores.rocksdb", "Store.apply_changelog_batch", "ea3344d369fc4ab5"),
    ),
    Code(
        RocksDBStore,
        "set_persisted_offset",
        Original("faust.stores.rocksdb", "Store.set_persisted_offset", "b4c811926678346e"),
    ),
    # Pauses every assigned partition, then the tables' rebalance (Recovery's state).
    Code(
        App,
        "_on_partitions_assigned",
        Original("faust.app.base", "App._on_partitions_assigned", "de932b7927db85b3"),
    ),
)
