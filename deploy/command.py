"""A deploy command's whole life, the same for every deploy: its settings read and
checked before anything runs (exit 2), the deploy with SIGINT and SIGTERM raised as
KeyboardInterrupt, and every failure one line on stderr with its exit code."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from deploy.aws import DeployError
from deploy.output import INVALID, STEP_FAILED, InvalidSetting, Output, interrupts_raised


class Settings(Protocol):
    @property
    def dry_run(self) -> bool: ...


S = TypeVar("S", bound=Settings)


def run_deploy(
    argv: Sequence[str] | None,
    usage: str,
    parse: Callable[[Sequence[str] | None, str], S],
    deploy: Callable[[S, Output], int],
    codes: Mapping[type[DeployError], int] = MappingProxyType({}),
) -> int:
    """``deploy``'s exit code, or a failure's: ``codes`` maps the deploy's own errors to
    theirs (the first that matches), anything else that stops it is STEP_FAILED (3)."""
    try:
        settings = parse(argv, usage)
    except InvalidSetting as exc:
        Output.error(str(exc))
        return INVALID
    out = Output(settings.dry_run)
    with interrupts_raised():
        try:
            return deploy(settings, out)
        except DeployError as exc:
            out.error(str(exc))
            return next(
                (code for kind, code in codes.items() if isinstance(exc, kind)), STEP_FAILED
            )
        except (ClientError, BotoCoreError) as exc:
            out.error(f"AWS: {exc}")
        except KeyboardInterrupt:  # between two steps: nothing of the deploy's is running
            out.error("interrupted")
    return STEP_FAILED
