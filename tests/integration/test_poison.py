"""Poison on the embedded broker: the real sample replay of orders with every kind of
hostile record mixed in (before, between and after real orders, on their partitions),
bad inventory rows and catalog entries, bad telemetry records written straight to
Kafka and bad readings posted to the ingest. Afterwards every process is up, every view
answers, every figure is exact against an independent computation, and each bad record
is one dead letter with the right reason (tests/support/poison.py lists them all).

One product serves the whole module; each test first waits until it has read
everything that was sent.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import pytest

from producers.orders import catalog_records, fixture, inventory_records, load_catalog
from streams.common.broker import EmbeddedBroker
from streams.common.deadletter import (
    DETAIL,
    LETTER_ID,
    REASON,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
)
from streams.common.topics import declare
from streams.orders.pipeline import topic_specs
from tests.support import independent
from tests.support.poison import (
    CATALOG,
    EXTREME_DEVICE,
    HUGE_DEVICE,
    INVENTORY,
    RAW,
    READINGS,
    START_MS,
    WINDOW_MS,
    Post,
    Sent,
    catalog_poison,
    duplicates,
    ingest_posts,
    interleave,
    inventory_poison,
    orders_poison,
    readings_poison,
    repeated_bad_values,
    send,
)
from tests.support.ports import free_port
from tests.support.telemetry import (
    committed_records,
    expected_figures,
    figure_differences,
    read_aggregates,
)
from tests.support.workers import (
    Consumed,
    Worker,
    produce,
    read_topic,
    stop_together,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SAMPLE = fixture("orders_sample.jsonl")
SMALL_WINDOWS = {
    "TELEMETRY_WINDOW_SECONDS": str(WINDOW_MS // 1000),
    "TELEMETRY_GRACE_SECONDS": "1",
    "TELEMETRY_BATCH_SECONDS": "0.1",
}
ORDERS_DLQ, TELEMETRY_DLQ = "orders.dlq", "telemetry.dlq"
ORDER_VIEWS = (
    "/orders/revenue/daily",
    "/orders/products/top",
    "/orders/products/top?by=units&limit=100",
    "/orders/customers",
    "/orders/inventory",
    "/orders/alerts",
    "/orders/reports/daily",
    "/orders/quality",
)
CONFIGURED_CHANNELS = {"web", "mobile", "api"}


@dataclass
class Run:
    """The running product and everything the module sent it."""

    bootstrap: str
    processes: dict[str, Worker]
    pids: dict[str, int]
    sent_from: datetime
    raw: list[Sent]
    reference: list[Sent]
    readings: list[Sent]
    answers: list[tuple[Post, int, Any]]
    _settled: bool = field(default=False)

    @property
    def orders(self) -> Worker:
        return self.processes["orders"]

    @property
    def telemetry(self) -> Worker:
        return self.processes["telemetry"]

    def settle(self) -> None:
        """Wait until each worker has read everything sent (once per module)."""
        if self._settled:
            return
        raw = len(read_topic(self.bootstrap, RAW))
        wait_until(
            lambda: self.orders.get("/orders/quality")["received"] == raw,
            timeout=180,
            what=f"the orders worker to settle all {raw} records of {RAW}",
        )
        for topic, partitions in ((INVENTORY, 4), (CATALOG, 1)):
            wait_until(
                partial(self.all_committed, topic, partitions),
                timeout=60,
                what=f"the orders worker to commit every record of {topic}",
            )
        records = len(read_topic(self.bootstrap, READINGS))
        wait_until(
            lambda: self.telemetry.metric("streams_telemetry_records_total") == records,
            timeout=120,
            what=f"the telemetry worker to read all {records} records of {READINGS}",
        )
        self._settled = True

    def all_committed(self, topic: str, partitions: int) -> bool:
        total = len(read_topic(self.bootstrap, topic))
        return committed_records(self.bootstrap, "orders", topic, partitions) == total


def no_problems(problems: list[str]) -> None:
    """Fail listing every problem (pytest would shorten a list comparison)."""
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def until_none(problems: Callable[[], list[str]], timeout: float, what: str) -> None:
    """Poll ``problems`` until it finds none; fail listing the last ones found."""
    try:
        wait_until(lambda: not problems(), timeout=timeout, what=what)
    except AssertionError:
        no_problems(problems())


def post(ingest: Worker, request: Post) -> tuple[int, Any]:
    call = urllib.request.Request(
        ingest.url + "/telemetry",
        data=request.body,
        headers={"Content-Type": request.content_type},
        method="POST",
    )
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def spread(replay: list[Sent], extra: list[Sent]) -> list[Sent]:
    """``extra`` records spread evenly through ``replay``."""
    out, step = list(replay), max(len(replay) // (len(extra) + 1), 1)
    for n, record in enumerate(extra, 1):
        out.insert(min(n * step + n - 1, len(out)), record)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("poison")
    lines = [line for line in SAMPLE.read_bytes().splitlines() if line.strip()]
    sample = [orjson.loads(line) for line in lines]
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    poison = orders_poison(sample, now) + duplicates(lines, sample)
    reference = catalog_poison() + inventory_poison(root)
    readings = readings_poison(now_ms)
    assert repeated_bad_values([*poison, *reference, *readings]) == []
    real = [Sent(RAW, str(o["customer_id"]).encode(), line, "sample order") for o, line in
            zip(sample, lines, strict=True)]  # fmt: skip
    replay = interleave(real, poison)

    with (
        EmbeddedBroker(port=free_port(), log_path=root / "broker.log") as broker,
        ExitStack() as stack,
    ):
        bootstrap = broker.bootstrap
        declare(bootstrap, topic_specs(4), replication_factor=1)
        produce(bootstrap, CATALOG, catalog_records(load_catalog()))
        produce(bootstrap, INVENTORY, inventory_records())
        # Half the bad reference rows are in before the orders worker starts, so its
        # catalog and stock are loaded with them before any order is checked; the
        # other half arrive during the replay.
        send(bootstrap, reference[::2])
        processes = {
            "orders": Worker(bootstrap, root / "orders", root / "orders.log"),
            "telemetry": Worker(
                bootstrap, root / "telemetry", root / "telemetry.log", env=SMALL_WINDOWS,
                module="streams.telemetry", command="worker",
            ),
            "ingest": Worker(
                bootstrap, root / "ingest", root / "ingest.log",
                module="streams.telemetry", command="ingest",
            ),
        }  # fmt: skip
        stack.callback(stop_together, processes.values())
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(Worker.start, processes.values()))
        pids = {name: p.proc.pid for name, p in processes.items() if p.proc is not None}

        sent_from = datetime.now(UTC)
        send(bootstrap, spread(replay, reference[1::2]))
        send(bootstrap, readings)
        answers = [(request, *post(processes["ingest"], request)) for request in
                   ingest_posts(now_ms)]  # fmt: skip
        yield Run(
            bootstrap,
            processes,
            pids,
            sent_from,
            [r for r in replay if r.topic == RAW],
            reference,
            readings,
            answers,
        )


# What the topics hold ------------------------------------------------------------------


def letter_id(topic: str, record: Consumed) -> str:
    return f"{topic}:{record.partition}:{record.offset}"


def traced(bootstrap: str, sent: list[Sent]) -> dict[str, Sent]:
    """Each record of ``sent``'s topics found by its bytes, by its dead-letter id."""
    by_value = {(s.topic, s.value): s for s in sent}
    found = {}
    for topic in sorted({s.topic for s in sent}):
        for record in read_topic(bootstrap, topic):
            if (topic, record.value) in by_value:
                found[letter_id(topic, record)] = by_value[(topic, record.value)]
    return found


def letters(bootstrap: str, dlq: str) -> dict[str, list[Consumed]]:
    """The dead letters of ``dlq`` by their ``dlq.id``."""
    found: dict[str, list[Consumed]] = defaultdict(list)
    for letter in read_topic(bootstrap, dlq):
        found[letter.headers[LETTER_ID]].append(letter)
    return found


def letter_differences(
    expected: dict[str, Sent], found: dict[str, list[Consumed]], ids: set[str] | None = None
) -> list[str]:
    """How the dead letters of ``ids`` (all found and expected by default) differ from
    one per refused record or group, with its reason."""
    out = []
    for letter_id_ in sorted(set(expected) | set(found) if ids is None else ids):
        sent = expected.get(letter_id_)
        want = Counter(sent.letters if sent else ())
        got = Counter(letter.headers[REASON] for letter in found.get(letter_id_, []))
        if want != got:
            details = [letter.headers.get(DETAIL, "")[:160] for letter in found.get(letter_id_, [])]
            name = sent.name if sent else "a record never sent to be refused"
            out.append(f"{letter_id_} ({name}): expected {dict(want)}, got {dict(got)} {details}")
    return out


def by_label(metrics_text: str, name: str, label: str) -> dict[str, float]:
    """The non-zero samples of ``name`` summed by the value of ``label``."""
    out: dict[str, float] = defaultdict(float)
    for line in metrics_text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric.startswith(name + "{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', metric))
            out[labels[label]] += float(value)
    return {key: value for key, value in out.items() if value}


def oracle(run: Run) -> independent.Answers:
    """The independent computation over every record of orders.raw it can judge (the
    rest are bad records whose reasons the test states, see poison.py)."""
    unjudged = {s.value for s in run.raw if not s.judged}
    records = [r for r in read_topic(run.bootstrap, RAW) if r.value not in unjudged]
    return independent.answers(records, independent.load_catalog(), sent_from=run.sent_from)


def order_id_of(value: bytes | None) -> str | None:
    found = re.search(rb"POISON-\d{3}", value or b"")
    return found.group().decode() if found else None


# Orders ---------------------------------------------------------------------------------


def test_every_real_order_counts_and_no_bad_one_does(run: Run) -> None:
    """All 1,000 sample orders and the valid extras are counted once, whatever poison
    came before, between and after them on their partitions, and no bad order is."""
    run.settle()
    answers = oracle(run)
    judged = Counter(reason for s in run.raw if s.judged for reason in s.letters)
    assert answers.dead_letters == judged, "the oracle and poison.py disagree on a reason"
    sample_ids = {str(orjson.loads(s.value or b"")["order_id"]) for s in run.raw
                  if s.name == "sample order"}  # fmt: skip
    assert len(sample_ids) == 1000
    assert sample_ids <= answers.counted_ids()

    enriched = read_topic(run.bootstrap, "orders.enriched")
    emitted = Counter((r.key or b"").decode() for r in enriched)
    assert emitted.keys() - answers.counted_ids() == set(), "bad orders were counted"
    assert answers.counted_ids() - emitted.keys() == set(), "valid orders were lost"
    assert [k for k, n in emitted.items() if n > 1] == []
    bad = {order_id_of(s.value) for s in run.raw if s.letters} - {None}
    assert bad & emitted.keys() == set()

    counted_bad = Counter(s.letters[0] for s in run.raw if s.letters)
    received = len(read_topic(run.bootstrap, RAW))
    assert run.orders.get("/orders/quality") == {
        "received": received,
        "counted": len(answers.counted),
        "duplicates": answers.duplicates,
        "dead_letters": dict(sorted(counted_bad.items())),
        "dead_letter_rate": round(sum(counted_bad.values()) / received, 6),
    }
    assert answers.duplicates == 21
    assert run.orders.metric("streams_orders_duplicates_total") == answers.duplicates


def test_orders_views_equal_an_independent_computation(run: Run) -> None:
    """Revenue by day, channel and region, top products and customer figures equal
    the independent computation, to the cent."""
    run.settle()
    pages = oracle(run).pages()
    pages.pop("/orders/quality")  # its received count needs the unjudged records too

    def differences() -> list[str]:
        found = [independent.answer_diff(p, run.orders.get(p), want) for p, want in pages.items()]
        return [diff for diff in found if diff]

    until_none(differences, timeout=45, what="every view to be exact")


def test_bad_orders_are_one_dead_letter_each_with_their_reason(run: Run) -> None:
    """Each bad record of orders.raw is one dead letter with its reason and its own key
    and bytes; no other record of orders.raw is dead-lettered."""
    run.settle()
    raw = [s for s in run.raw if not s.coerced]
    expected = {i: s for i, s in traced(run.bootstrap, raw).items() if s.letters}
    found = {
        i: found
        for i, found in letters(run.bootstrap, ORDERS_DLQ).items()
        if i.startswith(RAW + ":")
    }
    coerced = {i for i, s in traced(run.bootstrap, run.raw).items() if s.coerced}
    assert len(expected) == sum(1 for s in raw if s.letters)
    no_problems(letter_differences(expected, found, (set(expected) | set(found)) - coerced))
    for letter_id_, sent in expected.items():
        (letter,) = found[letter_id_]
        assert letter.key == sent.key, letter_id_
        _, partition, offset = letter_id_.split(":")
        assert (letter.headers[SOURCE_TOPIC], letter.headers[SOURCE_PARTITION],
                letter.headers[SOURCE_OFFSET]) == (RAW, partition, offset)  # fmt: skip
        if sent.value is not None and len(sent.value) > 900_000:
            assert letter.value is None and "left out" in letter.headers[DETAIL]
        else:
            assert letter.value == sent.value, sent.name


def test_numbers_sent_as_strings_or_booleans_are_invalid(run: Run) -> None:
    """An order whose quantity, price or total is a string or a boolean, and a stock
    of ``true``, are dead letters ``invalid``, not coerced into figures."""
    run.settle()
    sent = [*run.raw, *run.reference]
    expected = {i: s for i, s in traced(run.bootstrap, sent).items() if s.coerced}
    assert len(expected) == sum(1 for s in sent if s.coerced)
    no_problems(letter_differences(expected, letters(run.bootstrap, ORDERS_DLQ), set(expected)))


def test_bad_reference_rows_are_dead_letters_and_the_last_valid_row_stays(run: Run) -> None:
    """Each bad inventory row and catalog entry is one dead letter with its reason,
    and the stock and catalog users see are still the last valid ones."""
    run.settle()
    rows = [s for s in run.reference if not s.coerced]
    expected = traced(run.bootstrap, rows)
    found = {
        i: found
        for i, found in letters(run.bootstrap, ORDERS_DLQ).items()
        if i.startswith((INVENTORY + ":", CATALOG + ":"))
    }
    coerced = {i for i, s in traced(run.bootstrap, run.reference).items() if s.coerced}
    assert len(expected) == len(rows)
    no_problems(letter_differences(expected, found, (set(expected) | set(found)) - coerced))

    # The bundled batch's stock, with units sold from the independent computation.
    sold = {p["product_id"]: p["units"] for p in oracle(run).top_products("units", 1000)}
    with fixture("inventory.csv").open() as handle:
        stock = list(csv.DictReader(handle))
    want = [
        {
            "product_id": row["product_id"],
            "available_quantity": int(row["available_quantity"]),
            "warehouse": row["warehouse_location"],
            "last_updated": datetime.fromisoformat(row["last_updated"]),
            "units_sold": sold.get(row["product_id"], 0),
            "turnover": round(sold.get(row["product_id"], 0) / int(row["available_quantity"]), 4)
            if int(row["available_quantity"])
            else None,
            "low_stock": int(row["available_quantity"]) < 20,
        }
        for row in sorted(stock, key=lambda r: r["product_id"])
    ]

    def differences() -> list[str]:
        rows = run.orders.get("/orders/inventory")
        found = [{**r, "last_updated": datetime.fromisoformat(r["last_updated"])} for r in rows]
        if len(found) != len(want):
            return [f"{len(found)} products, {len(want)} expected"]
        return [f"{got} != {row}" for got, row in zip(found, want, strict=True) if got != row]

    until_none(differences, timeout=30, what="the bundled stock")
    # The catalog's looks of the products bad entries named (prices: the figures test).
    catalog = {e["product_id"]: e for e in load_catalog()}
    for product in run.orders.get("/orders/products/top?by=units&limit=1000"):
        entry = catalog[product["product_id"]]
        assert (product["category"], product["brand"]) == (entry["category"], entry["brand"])


def test_dead_letter_counts_agree_with_the_dead_letters(run: Run) -> None:
    """The dead-letter metrics by reason equal the dead letters in each pipeline's
    dead-letter topic; a channel nobody configured is counted under ``other``."""
    run.settle()
    orders = Counter(r.headers[REASON] for r in read_topic(run.bootstrap, ORDERS_DLQ))
    metrics = run.orders.metrics()
    assert by_label(metrics, "streams_orders_dead_letters_total", "reason") == orders
    telemetry = Counter(r.headers[REASON] for r in read_topic(run.bootstrap, TELEMETRY_DLQ))
    found = by_label(run.telemetry.metrics(), "streams_telemetry_dead_letters_total", "reason")
    assert found == telemetry

    counted = oracle(run).counted
    unconfigured = Counter(o.status for o in counted if o.channel not in CONFIGURED_CHANNELS)
    assert unconfigured.total() == 2
    accepted = by_label(metrics, "streams_orders_accepted_total", "channel")
    assert set(accepted) <= CONFIGURED_CHANNELS | {"other"}
    assert accepted["other"] == unconfigured.total()
    assert accepted.keys() - {"other"} == {o.channel for o in counted} & CONFIGURED_CHANNELS


# Telemetry ------------------------------------------------------------------------------


def counted_groups(run: Run) -> list[tuple[str, list[Any]]]:
    """Every (device, readings) that must be windowed: of the records written straight
    to Kafka, and of the requests the ingest accepted."""
    counted = [c for s in run.readings for c in s.counts]
    counted += [c for request, status, _ in run.answers if status == 202 for c in request.counts]
    return [(device, list(rows)) for device, rows in counted]


def test_telemetry_windows_are_exact_and_mixed_records_keep_their_good_groups(run: Run) -> None:
    """Every window holds exactly the valid readings sent (count, min, max, mean, p95
    against an independent computation), including the good groups of array records
    that carried bad ones, and no bad reading."""
    run.settle()
    groups = counted_groups(run)
    expected = expected_figures(groups, WINDOW_MS)

    def differences() -> list[str]:
        found = read_aggregates(run.bootstrap).figures
        return figure_differences(expected, found)

    until_none(differences, timeout=60, what="every window exact")
    aggregates = read_aggregates(run.bootstrap)
    assert (aggregates.reemitted, aggregates.conflicts) == ([], [])
    mixed = [s for s in run.readings if s.letters and s.counts]
    assert len(mixed) >= 8
    for record in mixed:
        for device, rows in record.counts:
            starts = {ts - ts % WINDOW_MS for _, _, _, ts, _ in rows}
            assert {(device, s) for s in starts} <= {(d, s) for d, s, _, _ in aggregates.figures}


def test_readings_at_the_largest_magnitude_sum_exactly_and_larger_ones_are_refused(
    run: Run,
) -> None:
    """A window of readings of plus and minus 1e100 and a 5 has the exact mean 1.0 and
    the right extremes; readings of 1.7e308, whose sum would overflow, are refused."""
    run.settle()
    key = (EXTREME_DEVICE, START_MS, "eth0", "util")
    wait_until(
        lambda: key in read_aggregates(run.bootstrap).figures,
        timeout=60,
        what=f"the window of {EXTREME_DEVICE}",
    )
    figures = read_aggregates(run.bootstrap).figures[key]
    want = {"count": 5, "min": -1e100, "max": 1e100, "mean": 1.0, "p95": 1e100}
    assert figures == want
    refused = [r for r in read_topic(run.bootstrap, TELEMETRY_DLQ) if r.key == HUGE_DEVICE.encode()]
    assert [r.headers[REASON] for r in refused] == ["invalid"]


def test_bad_telemetry_records_are_one_dead_letter_per_bad_group(run: Run) -> None:
    """Each bad record of telemetry.readings written straight to Kafka is dead-lettered
    with its reason, once per refused group of an array record; no good record is."""
    run.settle()
    mine = traced(run.bootstrap, run.readings)
    found = letters(run.bootstrap, TELEMETRY_DLQ)
    no_problems(letter_differences(mine, found, set(mine)))
    for letter_id_, sent in mine.items():
        for letter in found.get(letter_id_, []):
            assert letter.key == sent.key, sent.name


def test_the_ingest_refuses_bad_readings_with_a_4xx_naming_the_field(run: Run) -> None:
    """Each request with a bad reading gets a 4xx (422 naming the field) and none
    reaches Kafka; every accepted reading reaches a window, none a dead letter."""
    run.settle()
    wrong = []
    for request, status, body in run.answers:
        if status != request.status:
            wrong.append(f"{request.name}: {status}, expected {request.status} {body}")
        elif status == 202:
            assert body == {"accepted": sum(len(rows) for _, rows in request.counts)}
        elif request.field is not None:
            places = [entry["loc"] for entry in body["detail"]]
            assert places and all(loc[-1] == request.field for loc in places), (request, body)
        else:
            assert isinstance(body["error"], str)
    no_problems(wrong)
    assert max(status for _, status, _ in run.answers) < 500

    statuses = Counter(str(status) for _, status, _ in run.answers)
    ingest = run.processes["ingest"].metrics()
    assert by_label(ingest, "streams_telemetry_ingest_requests_total", "status") == statuses

    # What the ingest published: exactly the accepted requests' devices.
    mine = traced(run.bootstrap, run.readings)
    published = [r for r in read_topic(run.bootstrap, READINGS)
                 if letter_id(READINGS, r) not in mine]  # fmt: skip
    devices = {g["device_id"] for r in published for g in json.loads(r.value or b"[]")}
    accepted = {d for request, status, _ in run.answers if status == 202
                for d, _ in request.counts}  # fmt: skip
    assert devices == accepted
    # A reading accepted with a 202 is never lost, not even as a dead letter.
    no_problems(
        [
            f"{letter_id_}: {letter.headers[REASON]} {letter.headers[DETAIL]} {letter.value!r}"
            for letter_id_, found in letters(run.bootstrap, TELEMETRY_DLQ).items()
            if letter_id_ not in mine
            for letter in found
        ]
    )


# Every process ---------------------------------------------------------------------------


def test_every_process_is_up_and_every_view_answers(run: Run) -> None:
    """After all the poison, each process is the one started (same pid, alive), its
    health, metrics and views answer 200, and no batch or background task failed."""
    run.settle()
    for name, process in run.processes.items():
        assert process.alive(), f"{name} died: {process.log()[-3000:]}"
        assert process.proc is not None and process.proc.pid == run.pids[name]
        assert process.status("/health")[0] == 200, name
        assert process.metrics()
    for path in ORDER_VIEWS:
        assert run.orders.status(path)[0] == 200, path
    devices = {device for device, _ in counted_groups(run)}
    worker = run.telemetry
    for path in ("/telemetry/alerts", "/telemetry/config"):
        assert worker.status(path)[0] == 200, path
    answers = {d: worker.status(f"/telemetry/devices/{d}/windows")[0] for d in sorted(devices)}
    assert answers == dict.fromkeys(sorted(devices), 200)
    # Devices only bad records named were never seen: 404, not an error.
    for device in ("pz-bad-1", "pz%7C1", HUGE_DEVICE, "http-bad-1", "http-mixed"):
        assert worker.status(f"/telemetry/devices/{device}/windows")[0] == 404, device

    for metric in ("streams_orders_batch_failures_total", "streams_orders_task_failures_total"):
        assert run.orders.metric(metric) == 0, metric
    for metric in (
        "streams_telemetry_batch_failures_total",
        "streams_telemetry_task_failures_total",
    ):
        assert worker.metric(metric) == 0, metric
