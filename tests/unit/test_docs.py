"""The docs say what a user can set, on the page where it belongs, and what they point at
exists.

The owner's rule: the README is the front page; each pipeline's detail, its settings
included, lives in docs/<pipeline>.md, and the settings every process shares in
docs/platform.md. So every environment variable of every settings class has one row,
on its own page, with the default the code has; every row names a variable that
exists; every link and repository path resolves; and the README's guide is what
``make run`` prints.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from streams.common.settings import KafkaSettings, WorkerSettings
from streams.flowlogs.settings import FlowLogsSettings
from streams.launches.settings import LaunchesSettings
from streams.orders.settings import OrdersSettings
from streams.processes import Ports, guide
from streams.telemetry.settings import IngestSettings, TelemetrySettings
from streams.timeseries.settings import TimeSeriesSettings

ROOT = Path(__file__).resolve().parents[2]
README = "README.md"
PLATFORM = "docs/platform.md"
ORDERS = "docs/orders.md"
TELEMETRY = "docs/telemetry.md"
FLOWLOGS = "docs/flowlogs.md"
TIMESERIES = "docs/timeseries.md"
LAUNCHES = "docs/launches.md"
OPERATIONS = "docs/operations.md"

#: Where each settings class is documented.
HOME: dict[type[BaseSettings], str] = {
    KafkaSettings: PLATFORM,
    WorkerSettings: PLATFORM,
    OrdersSettings: ORDERS,
    TelemetrySettings: TELEMETRY,
    IngestSettings: TELEMETRY,
    FlowLogsSettings: FLOWLOGS,
    TimeSeriesSettings: TIMESERIES,
    LaunchesSettings: LAUNCHES,
}
#: Variables read outside the settings classes (the launcher, the Makefile, the storage
#: helpers), and where each is documented.
OTHER_VARIABLES = {
    "AWS_ENDPOINT_URL": PLATFORM,
    "DEMO": OPERATIONS,
    "ORDERS_WORKERS": OPERATIONS,
    "TELEMETRY_WORKERS": OPERATIONS,
    "STATE_DIR": OPERATIONS,
}
#: Packages the README lists as planned: named before they exist.
PLANNED = {"streams/flowlogs", "streams/timeseries", "streams/launches"}

# A settings row: | `NAME` ... | default | meaning |
SETTING_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`[^|]*\|\s*([^|]*?)\s*\|")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"(?:streams|producers|bench|dashboards|deploy|tests|docs)/[\w./-]*")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def pages() -> list[str]:
    return [README, *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


def prose(page: str) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in (ROOT / page).read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def code_blocks(page: str) -> list[tuple[str, str]]:
    """The page's fenced code blocks: (info string, text)."""
    blocks: list[tuple[str, str]] = []
    info: str | None = None
    body: list[str] = []
    for line in (ROOT / page).read_text().splitlines():
        if line.lstrip().startswith("```"):
            if info is None:
                info, body = line.strip()[3:], []
            else:
                blocks.append((info, "\n".join(body)))
                info = None
        elif info is not None:
            body.append(line)
    return blocks


def setting_rows(page: str) -> dict[str, list[str]]:
    """The defaults each variable is documented with on ``page``, one per row."""
    rows: dict[str, list[str]] = {}
    for line in prose(page):
        match = SETTING_ROW.match(line)
        if match:
            rows.setdefault(match.group(1), []).append(match.group(2).strip("`"))
    return rows


def env_names(settings: type[BaseSettings]) -> dict[str, Any]:
    """Each environment variable of ``settings`` and its default."""
    prefix = settings.model_config.get("env_prefix", "")
    names = {}
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        env = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
        names[env] = field.get_default(call_default_factory=True)
    return names


def shown(default: Any) -> str:
    """A default as the settings tables write it."""
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, Decimal):
        return format(default, "f")
    return str(default)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: str) -> set[str]:
    found: set[str] = set()
    for line in prose(page):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(1))
            anchor, n = base, 0
            while anchor in found:
                n += 1
                anchor = f"{base}-{n}"
            found.add(anchor)
    return found


@pytest.mark.parametrize("settings", list(HOME), ids=lambda s: s.__name__)
def test_every_setting_is_documented_on_its_page_with_its_default(
    settings: type[BaseSettings],
) -> None:
    """Each variable a process reads has one row, on its class's page, and the default
    that row states is the code's."""
    home = HOME[settings]
    documented = setting_rows(home)
    missing = [name for name in env_names(settings) if name not in documented]
    assert not missing, f"not in a settings table of {home}"
    wrong = {
        name: (documented[name], shown(default))
        for name, default in env_names(settings).items()
        if documented[name] != [shown(default)]
    }
    assert not wrong, f"{home}: documented defaults (rows) differ from the code's"


def test_each_variable_has_its_row_on_one_page_only() -> None:
    """The README is the front page: no settings table; a pipeline's settings are on its
    page, the shared ones on the platform page, each in one place."""
    homes = {name: HOME[s] for s in HOME for name in env_names(s)} | OTHER_VARIABLES
    elsewhere = {
        (name, page)
        for page in pages()
        for name in setting_rows(page)
        if homes.get(name) not in (None, page)
    }
    assert not elsewhere


def test_every_documented_variable_exists() -> None:
    """A row for a variable nothing reads any more is a stale promise."""
    known = {name for s in HOME for name in env_names(s)}
    source = (ROOT / "Makefile").read_text() + "".join(
        path.read_text() for path in (ROOT / "streams").rglob("*.py")
    )
    for name, page in OTHER_VARIABLES.items():
        assert name in source, f"{name} is read nowhere"
        assert name in setting_rows(page), f"{name} is not in a settings table of {page}"
    unknown = {
        (name, page)
        for page in pages()
        for name in setting_rows(page)
        if name not in known and name not in OTHER_VARIABLES
    }
    assert not unknown


@pytest.mark.parametrize("page", pages())
def test_links_resolve(page: str) -> None:
    """Every relative link names a file of the repository, and its #anchor a heading."""
    broken = []
    for line in prose(page):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = (ROOT / page).parent / path if path else ROOT / page
            if not resolved.exists():
                broken.append(target)
            elif anchor and resolved.suffix == ".md":
                relative = resolved.resolve().relative_to(ROOT).as_posix()
                if anchor not in anchors(relative):
                    broken.append(target)
    assert not broken


@pytest.mark.parametrize("page", pages())
def test_repository_paths_exist(page: str) -> None:
    """A path the docs name (`streams/common/batches.py`) is there: modules that moved
    or were replaced are not described at their old place."""
    stale = [
        code
        for line in prose(page)
        for code in CODE.findall(line)
        if REPO_PATH.fullmatch(code)
        and code.rstrip("/") not in PLANNED
        and not (ROOT / code).exists()
    ]
    assert not stale


def test_the_readme_links_every_docs_page() -> None:
    linked = {target.partition("#")[0] for line in prose(README) for target in LINK.findall(line)}
    assert {page for page in pages() if page != README} <= linked


def test_the_readme_shows_the_guide_make_run_prints() -> None:
    """The guide block is what `make run` prints with its default ports and state."""
    printed = guide(
        "127.0.0.1:9092",
        Ports([6066], [6071, 6072], 6070, 6080, 6081, [6090, 6091], 6095, 8050),
        Path("var"),
        True,
    )
    assert ("", printed.strip("\n")) in code_blocks(README)


def test_the_readme_lists_every_make_target() -> None:
    targets = re.findall(r"^([a-z-]+):.*## ", (ROOT / "Makefile").read_text(), re.MULTILINE)
    readme = (ROOT / README).read_text()
    assert targets
    assert [t for t in targets if f"`make {t}`" not in readme] == []
