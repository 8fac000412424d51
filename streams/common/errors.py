"""The one error shape of the JSON views, and an exception per status.

Every answer other than a success is ``{"error": message, "detail": ...}`` with its
status. ``detail`` is what the refusal names (``{"parameter": "limit"}``, ``{"limit":
1048576}``...) or null; details given by name are also at top level (``parameter``,
``allowed``), where clients written before ``detail`` read them. 400 a bad parameter
(``parameter`` names it) or a body that does not decode as its ``Content-Encoding``
says, 401 a missing or wrong ``X-API-Key`` (when the views are given a key), 404 an
unknown key or a path no view has, 405 a method the view does not take (``Allow`` and
``allowed`` list those it does), 413 a body too large, 415 a body not in the format the
view reads, 422 a body that breaks a rule, 503 not ready yet or the key's owner
unreachable (``Retry-After``), 500 a bug.

Pure, and apart from the web server (streams/common/web.py serves these): parsing code
raises them without importing aiohttp or Faust, so the flow-logs dashboard, which shares
the views' parsers, runs without either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar


class HttpError(Exception):
    """An answer other than a success: :func:`error_body` with ``status``."""

    status: ClassVar[int] = 500

    def __init__(
        self, message: str, *, headers: Mapping[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def body(self) -> dict[str, Any]:
        return error_body(self.message, **self.details)


def error_body(message: str, **details: Any) -> dict[str, Any]:
    """The body of every refusal: ``{"error": message, "detail": ...}``.

    ``detail`` is the one given, else the other details as a dict, else null. The other
    details are at top level too: the pipelines' clients read ``parameter`` there.
    """
    named = {name: value for name, value in details.items() if name != "detail"}
    detail = details.get("detail", named or None)
    return {"error": message, "detail": detail, **named}


class BadRequest(HttpError, ValueError):
    """A parameter the view cannot use (ValueError too: parsing code may catch it so)."""

    status = 400


class Unauthorized(HttpError):
    """401: a missing or wrong ``X-API-Key``."""

    status = 401


class NotFound(HttpError):
    status = 404


class MethodNotAllowed(HttpError):
    status = 405

    def __init__(self, method: str, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        super().__init__(
            f"method {method} not allowed", headers={"Allow": ", ".join(allowed)}, allowed=allowed
        )


class PayloadTooLarge(HttpError):
    status = 413


class UnsupportedMediaType(HttpError):
    """415: a body in another format than the view reads (JSON)."""

    status = 415


class Unprocessable(HttpError):
    """422: a well-formed request whose content breaks a rule (a value no number)."""

    status = 422


class Unavailable(HttpError):
    """503: try again after ``retry_after`` seconds (not ready, owner unreachable)."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **details)
