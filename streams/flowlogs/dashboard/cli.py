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
import math
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("networkflow")
#: The live refresh's bounds, in seconds: faster hammers the server from every open
#: page; beyond a day a browser's timer overflows (2^31 ms is under 25 days) to ~0.
REFRESH = (1.0, 86_400.0)


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
    dashboard.add_argument("--port", type=port, default=8050, help="port to listen on (1-65535)")
    dashboard.add_argument(
        "--alerts-url",
        type=alerts_url,
        help="a flow-logs worker, http(s)://host[:port], whose alerts to list",
    )
    dashboard.add_argument(
        "--refresh-seconds",
        type=refresh_seconds,
        default=30.0,
        help="how often the page looks for new lake files, 1 to 86400 (0: never)",
    )
    return top


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number 1-65535")
    return int(text)


def refresh_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    low, high = REFRESH
    if seconds != 0 and not low <= seconds <= high:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 0 (no refresh) or a number of seconds {low:g} to {high:g}"
        )
    return seconds


def alerts_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- reading it checks it: 99999 or "x" raise ValueError
    except ValueError:
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise argparse.ArgumentTypeError(f"{text!r} is not http(s)://host[:port]")
    return text


def check_host(host: str) -> None:
    """A ValueError unless this machine can listen on ``host`` (checked on port 0, so
    nothing is taken): an unknown name or another machine's address."""
    try:
        found = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = found[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"--host {host}: this machine cannot listen there ({exc})") from None


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
        check_host(args.host)
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
