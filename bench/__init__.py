"""Throughput benchmarks of the orders pipeline on the embedded broker (``make bench``).

``python -m bench [--orders N] [--repeat K] [--only pipeline|logic|views]`` measures:

- **pipeline**: N generated orders pre-produced to ``orders.raw``, then ONE worker
  process; orders/s from the first record counted to the last (``/metrics``), and
  the time until the mirror-backed ``/orders/revenue/daily`` view holds them all.
  Variants: default settings, the Parquet copy off, ``ORDERS_BATCH_SIZE=5000``.
- **logic**: the pure functions over the same records in this process (the ceiling).
- **views**: p50/p99 latency of two views with the worker holding the N orders.
- **versus** (also run by a plain ``python -m bench``): Quix Streams on a peer workload,
  the same work on our platform, and the full orders pipeline, one process each on the
  same orders, interleaved; ``bench/results-versus.json`` (bench/versus.py).

Results are printed as Markdown and written to ``bench/results.json``.
"""
