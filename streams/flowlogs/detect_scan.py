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
#: The lowest port of the ephemeral ranges clients' ports come from (Linux 32768-60999,
#: Windows and IANA 49152-65535).
EPHEMERAL = 32768
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
    an answer and one with a bare SYN is not; any other row is one when it comes from
    the service's side (``_from_service``) and its reverse was logged in the window.
    """
    connection = [*by, *CONNECTION]
    rows = _from_service(rows.select([*connection, "action", "tcp_flags"]), by)
    is_tcp = pc.equal(rows["protocol"], TCP)
    flags = rows["tcp_flags"]
    syn_ack = pc.fill_null(
        pc.and_(is_tcp, pc.not_equal(pc.bit_wise_and(flags, SYN_ACK_BIT), 0)), False
    )
    syn = pc.fill_null(pc.and_(is_tcp, pc.not_equal(pc.bit_wise_and(flags, SYN), 0)), False)
    from_service = rows["from_service"]
    maybe_answer = pc.and_(pc.invert(syn), from_service)
    sure = rows.filter(pc.invert(pc.or_(syn_ack, maybe_answer)))
    # The reverse of a row from the service's side comes from the client's: join only those.
    reverse = (
        rows.select([*by, *VPC, "dstaddr", "srcaddr", "dstport", "srcport", "protocol"])
        .filter(pc.invert(from_service))
        .rename_columns(connection)
    )
    unanswered = rows.filter(pc.and_(maybe_answer, pc.invert(syn_ack)))
    unanswered = unanswered.join(reverse, keys=connection, join_type="left anti", use_threads=False)
    columns = [*connection, "action", "tcp_flags"]
    return pa.concat_tables([sure.select(columns), unanswered.select(columns)])


def _from_service(rows: pa.Table, by: list[str]) -> pa.Table:
    """``rows`` with ``from_service``: whether each comes from the service's side.

    The service is the lower port, unless both ports are ephemeral (``EPHEMERAL``): a
    service there (WireGuard 51820, mosh 60001) may sit above its clients' ports. Then
    the endpoint (address and port) with more distinct peers is the service: its port
    is shared by all its clients, while a client's port serves one connection. On a tie
    (mosh gives each session its own port), the address with more distinct peer
    addresses: a server has many clients, each client one server. Then the lower port.
    """
    ephemeral = pc.and_(
        pc.greater_equal(rows["srcport"], EPHEMERAL), pc.greater_equal(rows["dstport"], EPHEMERAL)
    )
    plain = rows.filter(pc.invert(ephemeral))
    plain = plain.append_column("from_service", pc.less(plain["srcport"], plain["dstport"]))
    high = rows.filter(ephemeral)
    if high.num_rows == 0:
        return plain
    from_service = pc.less(high["srcport"], high["dstport"])
    for measure in ("addr", "port"):  # the weakest first: each decides unless tied
        high = _with_peers(high, by, measure)
        src, dst = high["src_peers"], high["dst_peers"]
        from_service = pc.if_else(pc.equal(src, dst), from_service, pc.greater(src, dst))
        high = high.drop_columns(["src_peers", "dst_peers"])
    high = high.append_column("from_service", from_service)
    return pa.concat_tables([plain, high.select(plain.column_names)])


def _with_peers(rows: pa.Table, by: list[str], measure: str) -> pa.Table:
    """``rows`` with ``src_peers`` and ``dst_peers``: the distinct peers of each side's
    address (``measure`` "addr") or endpoint ("port"), in the same row order."""
    rows = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    peers = _peer_counts(rows, by, with_port=measure == "port")
    for side in ("src", "dst"):
        names = {"addr": f"{side}addr", "port": f"{side}port", "peers": f"{side}_peers"}
        keys = [*by, *VPC, "protocol", f"{side}addr"]
        keys += [f"{side}port"] if measure == "port" else []
        rows = rows.join(
            peers.rename_columns([names.get(n, n) for n in peers.column_names]),
            keys=keys,
            join_type="left outer",
            use_threads=False,
        )
    # Joins reorder rows; the decisions so far are aligned with the order before.
    return rows.sort_by("_row").drop_columns(["_row"])


def _peer_counts(rows: pa.Table, by: list[str], *, with_port: bool) -> pa.Table:
    """Per address (and port, ``with_port``) of ``rows``: its distinct peers, counted
    the same way (addresses, or address and port)."""
    common = [*by, *VPC, "protocol"]
    sides = [
        rows.select([*common, a, p, peer_a, peer_p]).rename_columns(
            [*common, "addr", "port", "peer", "peer_port"]
        )
        for a, p, peer_a, peer_p in (
            ("srcaddr", "srcport", "dstaddr", "dstport"),
            ("dstaddr", "dstport", "srcaddr", "srcport"),
        )
    ]
    me = [*common, "addr", "port"] if with_port else [*common, "addr"]
    them = ["peer", "peer_port"] if with_port else ["peer"]
    pairs = pa.concat_tables(sides).group_by([*me, *them], use_threads=False).aggregate([])
    counts = pairs.group_by(me, use_threads=False).aggregate([([], "count_all")])
    return counts.rename_columns({"count_all": "peers"})


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
