"""Port scans: the weighted distinct ports and hosts one source tried in one window.

The rule and its reasons are in ``detect.py``; this is its column arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from streams.flowlogs.detect_base import FIVE_TUPLE, VPC, Alert, DetectorSettings, flows

TCP = 6
#: Protocols whose port fields are ports (TCP, UDP, SCTP); ICMP's are not.
PORT_PROTOCOLS = pa.array([TCP, 17, 132], pa.int64())
SYN = 2
#: Only a SYN-ACK sets this bit in a flow log's OR of the flags (18 = SYN-ACK).
SYN_ACK_BIT = 16
SOURCE = [*VPC, "srcaddr"]
CONNECTION = [*VPC, *FIVE_TUPLE]


def port_scans(window: pa.Table, window_start: int, settings: DetectorSettings) -> list[Alert]:
    """One ``port_scan`` alert per source whose port or host score reaches its threshold."""
    found = scan_findings(flows(window), settings)
    return [scan_alert(row, window_start) for row in found.to_pylist()]


def scan_findings(
    rows: pa.Table, settings: DetectorSettings, apart: Sequence[str] = ()
) -> pa.Table:
    """The scores of each source that reaches a threshold, sorted by ``apart`` then source.

    ``rows``: normalised flows (``detect_base.flows``); ``apart``: columns that keep sets
    of rows apart as if each were scored alone (a batch's windows: one group-by for all).
    """
    by = list(apart)
    source = [*by, *SOURCE]
    connections = _connections(_initiated(rows, by), by)
    if connections.num_rows == 0:
        return connections.select(source)
    failed = settings.scan_failed_weight
    tried_ports = connections.filter(pc.is_in(connections["protocol"], value_set=PORT_PROTOCOLS))
    host_weights = (failed, settings.scan_host_success_weight)
    scores = (
        _tally(connections, by)
        .join(
            _scores(connections, by, ["dstaddr"], host_weights, "host"),
            keys=source,
            use_threads=False,
        )
        .join(
            _scores(tried_ports, by, ["dstport", "protocol"], (failed, 1.0), "port"),
            keys=source,
            use_threads=False,
        )
    )
    port_score = pc.fill_null(scores["port_score"], 0.0)
    reached = pc.or_(
        pc.greater_equal(port_score, settings.scan_port_score),
        pc.greater_equal(scores["host_score"], settings.scan_host_score),
    )
    return scores.filter(reached).sort_by([(name, "ascending") for name in source])


def _initiated(rows: pa.Table, by: list[str]) -> pa.Table:
    """The rows a source sent on its own initiative: not a server's answers.

    Every interface logs both directions of its connections, so a busy server would
    otherwise "scan" the ephemeral ports of all its clients. A TCP row with a SYN-ACK is
    an answer and one with a bare SYN is not; any other row is an answer when it comes
    from the lower port (the service's side) and its reverse was logged in the window.
    """
    connection = [*by, *CONNECTION]
    rows = rows.select([*connection, "action", "tcp_flags"])  # what is read: fewer copies
    is_tcp = pc.equal(rows["protocol"], TCP)
    flags = rows["tcp_flags"]
    syn_ack = pc.fill_null(
        pc.and_(is_tcp, pc.not_equal(pc.bit_wise_and(flags, SYN_ACK_BIT), 0)), False
    )
    syn = pc.fill_null(pc.and_(is_tcp, pc.not_equal(pc.bit_wise_and(flags, SYN), 0)), False)
    from_lower_port = pc.less(rows["srcport"], rows["dstport"])
    maybe_answer = pc.and_(pc.invert(syn), from_lower_port)
    sure = rows.filter(pc.invert(pc.or_(syn_ack, maybe_answer)))
    # The reverse of a row from the lower port comes from the higher one: join only those.
    reverse = (
        rows.select([*by, *VPC, "dstaddr", "srcaddr", "dstport", "srcport", "protocol"])
        .filter(pc.greater(rows["srcport"], rows["dstport"]))
        .rename_columns(connection)
    )
    unanswered = rows.filter(pc.and_(maybe_answer, pc.invert(syn_ack)))
    unanswered = unanswered.join(reverse, keys=connection, join_type="left anti", use_threads=False)
    return pa.concat_tables([sure, unanswered.select(sure.column_names)])


def _connections(rows: pa.Table, by: list[str]) -> pa.Table:
    """One row per connection (5-tuple) with ``failed``: any of its rows rejected or SYN-only.

    Two interfaces may log one connection; with version-2 logs (no flags) the sender's
    side says ACCEPT and the receiver's REJECT, and the connection did fail.
    """
    syn_only = pc.fill_null(
        pc.and_(pc.equal(rows["protocol"], TCP), pc.equal(rows["tcp_flags"], SYN)), False
    )
    failed = pc.or_(pc.equal(rows["action"], "REJECT"), syn_only)
    connection = [*by, *CONNECTION]
    return (
        rows.select(connection)
        .append_column("failed", failed)
        .group_by(connection, use_threads=False)
        .aggregate([("failed", "any")])
        .rename_columns({"failed_any": "failed"})
    )


def _scores(
    connections: pa.Table,
    by: list[str],
    target: list[str],
    weight: tuple[float, float],
    name: str,
) -> pa.Table:
    """Per source: distinct ``target`` values (``{name}s``) and their weighted sum.

    A target weighs ``weight[0]`` when every connection to it failed, else ``weight[1]``.
    """
    source = [*by, *SOURCE]
    per_target = connections.group_by([*source, *target], use_threads=False).aggregate(
        [("failed", "all")]
    )
    weights = pc.if_else(per_target["failed_all"], weight[0], weight[1])
    return (
        per_target.append_column("weight", weights)
        .group_by(source, use_threads=False)
        .aggregate([("weight", "sum"), ([], "count_all")])
        .rename_columns({"weight_sum": f"{name}_score", "count_all": f"{name}s"})
    )


def _tally(connections: pa.Table, by: list[str]) -> pa.Table:
    source = [*by, *SOURCE]
    failed = pc.cast(connections["failed"], pa.int64())
    return (
        connections.select(source)
        .append_column("failed", failed)
        .group_by(source, use_threads=False)
        .aggregate([("failed", "sum"), ([], "count_all")])
        .rename_columns({"failed_sum": "failed_connections", "count_all": "connections"})
    )


def scan_alert(row: Mapping[str, object], window_start: int) -> Alert:
    """The alert of one of ``scan_findings``' rows."""
    detail = {
        name: row[name] or 0
        for name in ("ports", "port_score", "hosts", "host_score", "connections")
    }
    detail["failed_connections"] = row["failed_connections"]
    return Alert(
        kind="port_scan",
        account_id=str(row["account_id"]),
        vpc_id=str(row["vpc_id"]),
        subject=str(row["srcaddr"]),
        window_start=window_start,
        detail=detail,
    )
