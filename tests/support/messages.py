"""Stand-ins for Faust's consumed messages in unit tests."""

from __future__ import annotations

from typing import Any


class FakeMessage:
    """A consumed record as a handler sees it: its fields as attributes, weakly
    referable and hashed by identity, as Faust's messages are (``faust_fixes.abandon``
    keeps a weak set of them)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)
