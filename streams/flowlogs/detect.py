"""Anomaly detectors over one closed 5-minute window of flow rows (pure).

The wiring calls each detector once per closed event-time window (a flow belongs to the
window of its ``start``) with a ``pyarrow.Table`` of the window's rows. Only rows with
``log_status`` OK and both addresses are flows; a null ``vpc_id`` (version-2 logs) or
other text is "-", null or NaN ports and bytes are 0, a null protocol -1. Everything is
per account and VPC. Findings are ``Alert`` values whose id hashes kind, account, VPC,
subject and window, so a window processed again yields the same ids. Every detector
is safe to apply to a window twice: exfiltration skips a window its baseline already
holds, long-lived recomputes the same streaks, a known country is known.

Port scans (``port_scans``, stateless). Per (account, vpc, srcaddr): the distinct
destination hosts, and the distinct destination (port, protocol) pairs over TCP, UDP and
SCTP, that the source tried. A server's answers are not tries: a TCP row with a SYN-ACK
is an answer, a bare SYN never is, and any other row is one when it comes from the
service's side and its reverse 5-tuple is in the window. The service's side is the lower
port, unless both ports are ephemeral (32768 and up): a service there (WireGuard 51820,
mosh 60001) may sit above its clients' ports, so the endpoint (address and port) with
more distinct peers in the window is the service (its port is shared by its clients, a
client's port serves one connection), the lower port breaking a tie. An unanswered row
is always a try, so a scanner's probes count whatever its port. A connection (5-tuple)
failed when any of its rows was REJECT or SYN-only (tcp_flags == 2). A port or host weighs
``scan_failed_weight`` (2) when every connection to it failed; else a port weighs 1 and
a host ``scan_host_success_weight`` (0.25: a busy client or proxy reaches many hosts,
a sweep is mostly refused or unanswered; at 1, ordinary hosts of a busy VPC alerted). Alert when the
port score reaches ``scan_port_score`` (100) or the host score ``scan_host_score`` (50).
Both ENIs logging one connection: the same 5-tuple is one connection, so ports and hosts
count once; and one side's REJECT fails it even if the other side's row says ACCEPT.

Exfiltration (``exfiltration``). Per internal source (RFC 1918, 100.64/10, fc00::/7):
bytes of accepted flows to public destinations (globally routable unicast) in the
window, against the source's EWMA of the same figure (streams/common/detector.py, weight
``exfil_alpha`` 0.1). Alert when the baseline has ``exfil_min_history`` (12) windows,
the bytes reach ``exfil_min_bytes`` (1 MB, decimal) and z = (bytes - mean) / spread
exceeds ``exfil_z`` (4), spread floored at ``exfil_spread_floor_bytes`` (1 MB) and at
``exfil_spread_floor_share`` (0.1) of the mean. The same 5-tuple logged by two interfaces
(instance and NAT gateway) counts once: summed per interface, the largest taken. Windows
in which a source sent nothing are not observations: the baseline is "bytes of a window
in which it talks", so a nightly backup is compared with its other nights, and no idle
key is touched (the wiring reads only the window's keys). A baseline not updated for
``exfil_forget_after_windows`` (2016 = 7 days) starts over. An alerting window is
folded in clipped to the alert line (mean + z * spread): one burst cannot teach the
baseline that bursts are normal, a lasting new level is learned over some windows. A
window at or before the last one folded is a replay and changes nothing. Public and
IPv6 global sources are not internal by address and are never scored.

Long-lived connections (``long_lived``). A connection is the 5-tuple of an accepted
flow read client to server (client = the higher port; the lower address on a tie), so
both directions and both ENIs' rows are one connection. It is present in the window of
each record's start and, for a record longer than a minute, in every window up to its
end's (two windows past its start's at most: a record lasts 10 minutes at most). AWS
aggregates flows over 1 minute or 10 (the default): a 1-minute record lasts under a
minute, while at 10 minutes a connection has one record per 10 minutes, which counted by
its start alone would put it in every other window. Its streak is the number of
consecutive windows it is present in; the alert comes once, in the window whose records
take the streak to ``long_lived_windows`` (12 = one hour) or past it (a 10-minute record
adds two or three windows at once); a gap restarts the streak, and a restarted streak may
alert again. A connection absent from a whole window (no record starting in it or
lasting into it) breaks its streak, so short exchanges on one 5-tuple every 10 minutes
are not long-lived.

New countries (``new_countries``). The registered country (iptocc, each distinct
address looked up once per call) of every public address at either end of an accepted
flow, per (account, vpc). A VPC learns silently during ``country_learning_windows`` (12)
windows from the first window it had any flow in (by the clock, with or without
traffic); after that a country not in its set alerts once and joins the set. Private,
shared and other non-public addresses never count; unknown countries are ignored.
Rejected flows are left out: the internet probes public addresses from everywhere.

State (JSON values under deterministic keys without line breaks; parts are
percent-escaped for "%", "|" and line breaks). Before the call the wiring reads the
keys the detector names (``baseline_keys``, ``streak_keys``, ``country_keys``), passes
what it found (missing keys absent), then writes the returned entries (None: delete).

- ``exf|<account>|<vpc>|<srcaddr>`` -> ``[n, mean, variance, last window]``
- ``ll|<account>|<vpc>|<window:012d>|<client>|<cport>|<server>|<sport>|<proto>`` ->
  ``[streak, window that wrote it]``, namespaced by the last window the streak reaches
  (past the window that wrote it for a long record). Only a window's candidates are
  read: its connections also in the window before's rows or with a record longer than
  a minute. A window reads the namespaces of the window before, its own and the next,
  ignoring entries it wrote itself, and writes each streak under the last window it
  reaches; after the call (with or without flows) the wiring deletes the key range
  ``stale_streaks(window_start)``, every namespace before the window before: streaks
  that reach no further cannot continue and go without scanning the state, and the
  window before stays, so applying a window twice writes the same entries again.
- ``cc|<account>|<vpc>`` -> ``{"first": window, "countries": [codes]}``

Each key belongs to one account and VPC, so the state must be partitioned by (account,
vpc) or coarser, as the windows are.
"""

from __future__ import annotations

from streams.flowlogs.detect_base import WINDOW_SECONDS, Alert, DetectorSettings, address_kind
from streams.flowlogs.detect_baseline import baseline_keys, exfiltration
from streams.flowlogs.detect_countries import country_keys, new_countries, registered_countries
from streams.flowlogs.detect_scan import port_scans
from streams.flowlogs.detect_streaks import (
    continued_connections,
    long_lived,
    stale_streaks,
    streak_keys,
)

__all__ = [
    "WINDOW_SECONDS",
    "Alert",
    "DetectorSettings",
    "address_kind",
    "baseline_keys",
    "continued_connections",
    "country_keys",
    "exfiltration",
    "long_lived",
    "new_countries",
    "port_scans",
    "registered_countries",
    "stale_streaks",
    "streak_keys",
]
