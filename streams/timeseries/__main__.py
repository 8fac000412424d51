import os

# One BLAS thread: OpenBLAS's pool spun on every small vector product (a series'
# slope), as much CPU as the worker's own thread at 200 requests/s (measured: worker
# CPU 1.7 -> 1.1 cores). Set before numpy is first imported; a value given wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from streams.timeseries.main import main

main()
