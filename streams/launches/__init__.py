"""The SpaceX launches micro-ETL: the API's launches to one Parquet object on S3.

One code path, two ways to run it (docs/launches.md):

- the batch job, ``python -m streams.launches``: extract (extract.py), validate
  (models.py), transform (transform.py), load (load.py), once, then exit (job.py);
- the streaming way: ``python -m producers launches`` publishes the API's records to
  ``launches.raw``; the worker (``python -m streams.launches worker``, topology.py)
  keeps the latest valid version of each launch in a table and rewrites the same object,
  debounced, with the same transform and load functions.
"""
