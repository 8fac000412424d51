"""How a correction replaces a Faust or aiokafka function, and proves the result.

Before patching: the function found on the class must be the very one the correction was
written against, identified by module, qualified name and a hash of its source text
(``inspect.getsource``): a release, a local edit or another patch that changed it is
refused, and so is a change to any other function the correction relies on. After
patching: the class attribute must be our replacement, and every class the library
actually instantiates must resolve the name to it (a subclass overriding it would leave
the correction dormant). ``Patch.verify`` repeats the second check at any time.

``python -m streams.common.faust_fixes`` prints the fingerprints found next to the ones
expected, for the upgrade procedure.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mode.services import ServiceTask


class PatchMismatchError(RuntimeError):
    """A patched function, or one a correction relies on, is not the expected one."""


@dataclass(frozen=True)
class Original:
    """What a library function must be: its module, qualified name and source hash."""

    module: str
    qualname: str
    #: First 16 hex digits of the SHA-256 of ``inspect.getsource(function)``.
    source_sha256: str

    @classmethod
    def of(cls, function: Any) -> Original:
        if isinstance(function, ServiceTask):  # a mode ``@Service.task`` method
            function = function.fun
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError) as exc:  # no source shipped, or not a function
            raise PatchMismatchError(f"cannot read the source of {function!r}: {exc}") from exc
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return cls(function.__module__, function.__qualname__, digest)


@dataclass(frozen=True)
class Code:
    """A function found as ``owner.name`` that must be ``expected``."""

    owner: type
    name: str
    expected: Original

    @property
    def where(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def check(self, found: Any = None) -> None:
        """Raise ``PatchMismatchError`` unless ``found`` (default: the class's own
        attribute) is the expected function."""
        if found is None:
            found = vars(self.owner).get(self.name)
        if found is None:
            raise PatchMismatchError(f"{self.where} is gone: the correction has nothing to patch")
        actual = Original.of(found)
        if actual != self.expected:
            raise PatchMismatchError(
                f"{self.where} is not the function the correction was written for: expected "
                f"{self.expected}, found {actual}. Re-read it against the correction "
                "(docs/faust-corrections.md) before changing the fingerprint."
            )


@dataclass(eq=False)
class Patch:
    """``owner.name`` replaced by ``replacement``, which calls ``self.original``."""

    target: Code
    replacement: Callable[..., Any]
    #: Classes the library instantiates: each must resolve ``name`` to the replacement.
    used_by: tuple[type, ...] = ()
    #: Overrides between a ``used_by`` class and the owner that are known to delegate
    #: to the owner's function (``super()``), with the source they must have.
    passes_through: Mapping[type, Original] = field(default_factory=dict)
    #: Code the correction relies on without replacing it.
    relies_on: tuple[Code, ...] = ()
    _original: Callable[..., Any] | None = None

    @property
    def where(self) -> str:
        return self.target.where

    @property
    def installed(self) -> bool:
        return vars(self.target.owner).get(self.target.name) is self.replacement

    @property
    def original(self) -> Callable[..., Any]:
        """The library's own function, which the replacement calls."""
        if self._original is None:
            raise RuntimeError(f"{self.where} was never patched")
        return self._original

    def check_originals(self) -> None:
        """Before patching: the target and everything relied upon are as expected."""
        if not self.installed:
            self.target.check()
        for code in self.relies_on:
            code.check()

    def install(self) -> None:
        """Patch (once) and verify; a second call only verifies."""
        if not self.installed:
            self.check_originals()
            self._original = vars(self.target.owner)[self.target.name]
            setattr(self.target.owner, self.target.name, self.replacement)
        self.verify()

    def verify(self) -> None:
        """Raise ``PatchMismatchError`` unless the replacement is the one in use."""
        owner, name = self.target.owner, self.target.name
        found = vars(owner).get(name)
        if found is not self.replacement:
            raise PatchMismatchError(
                f"{self.where} is {found!r}, not the correction {self.replacement!r}: "
                "something replaced it after it was installed"
            )
        for cls in self.used_by:
            if owner not in cls.__mro__:
                raise PatchMismatchError(f"{cls!r} no longer inherits {self.where}")
            for klass in cls.__mro__[: cls.__mro__.index(owner)]:
                if name in vars(klass):
                    expected = self.passes_through.get(klass)
                    if expected is None:
                        raise PatchMismatchError(
                            f"{klass.__qualname__}.{name} overrides {self.where}: {cls!r} "
                            "would not use the correction"
                        )
                    Code(klass, name, expected).check()

    def remove(self) -> None:
        """Put the library's own function back (tests); a no-op when not installed."""
        if self.installed and self._original is not None:
            setattr(self.target.owner, self.target.name, self._original)


def check_all(codes: Iterable[Code]) -> None:
    """Raise ``PatchMismatchError`` unless every function in ``codes`` (what a
    correction that replaces no function, such as an intake, replicates or relies on)
    is the one it was written against."""
    for code in codes:
        code.check()


def install_all(patches: Iterable[Patch]) -> None:
    """Check every original first, then patch; a failure leaves nothing half-patched."""
    patches = list(patches)
    for patch in patches:
        patch.check_originals()
    new = [patch for patch in patches if not patch.installed]
    try:
        for patch in patches:
            patch.install()
    except BaseException:
        for patch in reversed(new):
            patch.remove()
        raise


def describe(patches: Iterable[Patch]) -> list[tuple[str, str, str]]:
    """(where, expected, found) for every patched and relied-upon function."""
    rows = []
    for patch in patches:
        codes = [(patch.target, patch.original if patch.installed else None)]
        codes += [(code, None) for code in patch.relies_on]
        for code, function in codes:
            found_function = function or vars(code.owner).get(code.name)
            try:
                found = str(Original.of(found_function)) if found_function else "(missing)"
            except PatchMismatchError as exc:
                found = str(exc)
            rows.append((code.where, str(code.expected), found))
    return rows
