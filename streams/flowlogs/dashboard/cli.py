"""``networkflow dashboard``: the flow-logs dashboard on http://127.0.0.1:8050.

    networkflow dashboard --bucket B [--prefix P] [--aws-region R]   # lake s3://B/P
    networkflow dashboard --source DIR                               # lake in DIR

What it reads is the pipeline's results, not the raw logs: the lake the flow-logs
workers write (``FLOWLOGS_LAKE``), whose Parquet files are under ``<lake>/flows/``.
``--bucket``/``--prefix`` name that lake on S3, ``--source`` a local one (``make run``'s
is ``var/lake/flowlogs``). The reader's source (``AWSLogs/...``) is refused with a
message saying so. ``--alerts-url``: a flow-logs worker's web address, for the alerts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("networkflow")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="networkflow", description="VPC flow-logs tools")
    commands = top.add_subparsers(dest="command", required=True)
    dashboard = commands.add_parser(
        "dashboard",
        help="serve the flow-logs dashboard",
        description="Serve the dashboard of a flow-logs lake (the workers' FLOWLOGS_LAKE).",
    )
    where = dashboard.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="S3 bucket of the lake")
    where.add_argument("--source", type=Path, help="local directory of the lake")
    dashboard.add_argument("--prefix", default="", help="the lake's key prefix in --bucket")
    dashboard.add_argument("--aws-region", help="the bucket's region (default: AWS_REGION)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dashboard.add_argument("--port", type=int, default=8050, help="port to listen on")
    dashboard.add_argument(
        "--alerts-url", help="a flow-logs worker, http://host:port, whose alerts to list"
    )
    dashboard.add_argument(
        "--refresh-seconds",
        type=float,
        default=30.0,
        help="how often the page looks for new lake files (0: never)",
    )
    return top


def lake_uri(args: argparse.Namespace) -> str:
    """The lake the arguments name; a ValueError says why they name none."""
    if args.bucket is not None:
        bucket = args.bucket.removeprefix("s3://").strip("/")
        if not bucket or "/" in bucket:
            raise ValueError(f"--bucket {args.bucket!r}: a bucket name (put the path in --prefix)")
        prefix = args.prefix.strip("/")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if args.prefix or args.aws_region:
        raise ValueError("--prefix and --aws-region go with --bucket, not --source")
    source: Path = args.source
    if not source.is_dir():
        raise ValueError(f"--source {source}: no such directory")
    if (source / "AWSLogs").exists() and not (source / "flows").exists():
        raise ValueError(
            f"--source {source} holds raw flow logs (AWSLogs/): the dashboard reads the "
            "pipeline's lake, the directory the workers write (FLOWLOGS_LAKE)"
        )
    return str(source)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        uri = lake_uri(args)
    except ValueError as exc:
        sys.stderr.write(f"networkflow dashboard: {exc}\n")
        return 2
    from streams.flowlogs.dashboard.app import create_app

    app = create_app(
        uri,
        alerts_url=args.alerts_url,
        refresh_seconds=args.refresh_seconds,
        region=args.aws_region,
    )
    log.info("dashboard of %s on http://%s:%s", uri, args.host, args.port)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
