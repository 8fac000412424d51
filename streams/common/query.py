"""Query-string parameters of web views: checked, and a 400 that names the bad one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class BadRequest(ValueError):
    """A query parameter a view cannot use; its message is the answer's ``error``."""


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return int(raw)


def choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = query.get(name, choices[0])
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def json_page(app: Any, path: str, answer: Callable[[Mapping[str, str]], Any]) -> None:
    """Serve ``answer(query)`` as JSON at ``path``; a BadRequest it raises is a 400."""

    async def handler(view: Any, request: Any) -> Any:
        try:
            return view.json(answer(request.query))
        except BadRequest as exc:
            return view.json({"error": str(exc)}, status=400)

    handler.__name__ = path.strip("/").replace("/", "_")
    app.page(path, name=handler.__name__)(handler)
