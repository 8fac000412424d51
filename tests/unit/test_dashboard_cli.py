"""``networkflow dashboard``'s arguments: which lake, which address (cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.flowlogs.dashboard import app as app_module
from streams.flowlogs.dashboard.cli import lake_uri, main, parser


def uri(*argv: str) -> str:
    return lake_uri(parser().parse_args(["dashboard", *argv]))


def test_bucket_and_prefix_name_an_s3_lake() -> None:
    """``--bucket B --prefix P`` is the lake s3://B/P (its files under P/flows/)."""
    assert uri("--bucket", "my-lake", "--prefix", "/flowlogs/lake/") == "s3://my-lake/flowlogs/lake"
    assert uri("--bucket", "s3://my-lake", "--aws-region", "eu-west-1") == "s3://my-lake"


def test_source_names_a_local_lake(tmp_path: Path) -> None:
    assert uri("--source", str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bucket", "my-lake/flowlogs"], "put the path in --prefix"),
        (["--source", "{tmp}/missing"], "no such directory"),
        (["--source", "{tmp}", "--prefix", "x"], "go with --bucket"),
        (["--source", "{tmp}", "--aws-region", "eu-west-1"], "go with --bucket"),
        (["--source", "{tmp}/raw"], "raw flow logs"),
    ],
)
def test_arguments_that_name_no_lake_are_refused(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 2 and a sentence; a raw-logs directory is told apart from a lake."""
    (tmp_path / "raw" / "AWSLogs").mkdir(parents=True)
    assert main(["dashboard", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["--bucket", "b", "--source", "."], ["--port", "x", "--source", "."]],
)
def test_argparse_refuses_missing_or_conflicting_sources(argv: list[str]) -> None:
    """One lake, named once; ports are numbers."""
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["dashboard", *argv])
    assert exit_.value.code == 2


def test_main_serves_on_localhost_8050_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """127.0.0.1:8050, refresh every 30 s, no alerts unless a worker is named."""
    served: dict[str, Any] = {}

    class App:
        def run(self, **kwargs: Any) -> None:
            served.update(kwargs)

    def create_app(lake: str, **kwargs: Any) -> App:
        served.update(lake=lake, **kwargs)
        return App()

    monkeypatch.setattr(app_module, "create_app", create_app)
    assert main(["dashboard", "--source", str(tmp_path)]) == 0
    assert served == {
        "lake": str(tmp_path), "alerts_url": None, "refresh_seconds": 30.0, "region": None,
        "host": "127.0.0.1", "port": 8050, "debug": False,
    }  # fmt: skip
    served.clear()
    main(["dashboard", "--bucket", "b", "--aws-region", "eu-west-1", "--host", "0.0.0.0",
          "--port", "9000", "--alerts-url", "http://w:6080", "--refresh-seconds", "5"])  # fmt: skip
    assert served == {
        "lake": "s3://b", "alerts_url": "http://w:6080", "refresh_seconds": 5.0,
        "region": "eu-west-1", "host": "0.0.0.0", "port": 9000, "debug": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--refresh-seconds", "nan"], "--refresh-seconds"),
        (["--refresh-seconds", "inf"], "--refresh-seconds"),
        (["--refresh-seconds", "-5"], "--refresh-seconds"),
        (["--refresh-seconds", "0.5"], "--refresh-seconds"),
        (["--refresh-seconds", "3000000"], "--refresh-seconds"),
        (["--port", "0"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port", "70000"], "--port"),
        (["--alerts-url", "not a url"], "--alerts-url"),
        (["--alerts-url", "ftp://w:6080"], "--alerts-url"),
        (["--alerts-url", "http://w:99999"], "--alerts-url"),
        (["--alerts-url", "http://w:6080/flowlogs?x=1"], "--alerts-url"),
        (["--alerts-url", "http://"], "--alerts-url"),
    ],
)
def test_unusable_settings_are_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 2 and argparse's one-line error, no traceback, nothing served: a
    refresh that is not a number of seconds from 1 to a day would flood the server."""
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["dashboard", "--source", ".", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid", "192.0.2.1"])
def test_a_host_this_machine_cannot_listen_on_is_refused(
    tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before the app is built: a sentence and exit status 2."""

    def create_app(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing is served")

    monkeypatch.setattr(app_module, "create_app", create_app)
    assert main(["dashboard", "--source", str(tmp_path), "--host", host]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"networkflow dashboard: --host {host}")
    assert len(err.strip().splitlines()) == 1


def test_refresh_zero_and_a_day_are_accepted() -> None:
    """0 turns the live refresh off; https alerts URLs and a trailing slash are fine."""
    args = parser().parse_args(["dashboard", "--source", ".", "--refresh-seconds", "0",
                                "--alerts-url", "https://w.example:8443/"])  # fmt: skip
    assert (args.refresh_seconds, args.alerts_url) == (0.0, "https://w.example:8443/")
    assert parser().parse_args(["dashboard", "--source", ".", "--refresh-seconds", "86400"])
