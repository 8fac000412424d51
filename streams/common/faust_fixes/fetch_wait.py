"""How long the broker may hold a worker's fetch: Faust hard-codes 1,500 ms.

``AIOKafkaConsumerThread._create_worker_consumer`` builds the group consumer with
``fetch_max_wait_ms=1500`` and no setting to change it. Against Apache Kafka that costs
nothing: a fetch returns as soon as a record arrives. The embedded broker holds a fetch
for half its wait whatever arrives meanwhile (as it holds a JoinGroup for half the
session timeout), so a record waited ~750 ms before any worker saw it: measured as
750 ms per write of the time-series API. An app that serves requests asks for a short
wait (``make_app(fetch_max_wait_ms=...)``); on Kafka, a shorter wait only means more
empty fetches while idle.

The replacement calls Faust's function, then sets the wait the app asked for on the new
consumer before it starts (``AIOKafkaConsumer.start`` hands ``_fetch_max_wait_ms`` to its
Fetcher); an app that asked for nothing keeps Faust's 1,500 ms.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.common.faust_fixes.patching import Code, Original, Patch, install_all
from streams.common.faust_fixes.versions import check_versions

#: The attribute of a Faust app that carries the wait it asked for (ms).
APP_ATTRIBUTE = "streams_fetch_max_wait_ms"


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = FETCH_WAIT.original(self, transport)
    wanted = getattr(self.app, APP_ATTRIBUTE, None)
    if wanted is not None:
        consumer._fetch_max_wait_ms = int(wanted)
    return consumer


FETCH_WAIT = Patch(
    Code(
        AIOKafkaConsumerThread,
        "_create_worker_consumer",
        Original(
            "faust.transport.drivers.aiokafka",
            "AIOKafkaConsumerThread._create_worker_consumer",
            "c2701bfc3e6f6cad",
        ),
    ),
    _create_worker_consumer,
    used_by=(AIOKafkaConsumerThread,),
    relies_on=(
        # Stores fetch_max_wait_ms as _fetch_max_wait_ms, which start() gives the Fetcher.
        Code(
            aiokafka.AIOKafkaConsumer,
            "__init__",
            Original("aiokafka.consumer.consumer", "AIOKafkaConsumer.__init__", "01506f316191f7c9"),
        ),
        Code(
            aiokafka.AIOKafkaConsumer,
            "start",
            Original("aiokafka.consumer.consumer", "AIOKafkaConsumer.start", "2f1ba70443327538"),
        ),
    ),
)


def set_fetch_max_wait(app: Any, milliseconds: int) -> None:
    """Have ``app``'s group consumer wait at most ``milliseconds`` per fetch."""
    if milliseconds < 1:
        raise ValueError("a fetch wait of at least 1 ms")
    check_versions()
    install_all((FETCH_WAIT,))
    setattr(app, APP_ATTRIBUTE, milliseconds)
