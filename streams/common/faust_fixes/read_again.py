"""Records the resume after a recovery empties from the consumer's queues, read again
(part of correction 1, installed by ``rebalance._init``)."""

from __future__ import annotations

import logging
from typing import Any

from streams.common.faust_fixes.counters import Fix, count
from streams.common.faust_fixes.delivery_order import DeliveryOrder

log = logging.getLogger(__name__)


class ReadAgain:
    """Emptied with the streams' queues by ``app.flow_control`` (it manages this as one
    of them). Faust resumes flow control after a recovery *after* seeking the source
    partitions to their committed offsets, and the resume empties the queues: records
    a fetch delivered in between passed the offset-order rule, so the next fetch, which
    continues after them, would be delivered too and they would never be processed.
    Each partition with records delivered since its seek is sought back to it (records
    processed meanwhile are read twice, which is safe), those of a batch intake
    (emptied by ``BatchIntake.clear``) as Faust's. At a revocation the flow is stopped
    first, and the next assignment seeks every partition: nothing to do."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def clear(self) -> None:
        consumer = self.consumer
        order: DeliveryOrder = consumer.delivery_order
        generation = consumer.app.consumer_generation_id
        if not consumer.flow_active or order.generation != generation:
            return
        for tp, offset in order.admitted_since_seek().items():
            consumer._thread.seek(tp, offset)  # synchronous, as Faust's own seeks
            order.sought(generation, {tp: offset})
            count(Fix.PARTITIONS_SOUGHT_BACK)
            log.info(
                "%s: records emptied at the resume after recovery: reading again from %d",
                tp,
                offset,
            )
