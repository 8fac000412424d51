"""What aiohttp hands a view before the view's own work: the request's body, read
within a limit, and aiohttp's own refusals, answered in the one error shape of
:mod:`streams.common.errors` (``web.Views`` installs the middleware; views call
``read_body``)."""

from __future__ import annotations

from typing import Any

import aiohttp
import aiohttp.web

from streams.common.errors import BadRequest, HttpError, MethodNotAllowed, NotFound, PayloadTooLarge

#: Headers of a refusal that say how to go on: kept in the JSON answer.
REFUSAL_HEADERS = ("Retry-After", "Allow")


async def read_body(request: Any, limit: int) -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes, declared or streamed
    (aiohttp's own cap would raise a 500 from ``request.read()``), and with 400 when it
    cannot be read (aiohttp decodes gzip and deflate as it reads: data that is neither
    raises then). ``limit`` counts decoded bytes: a small body that inflates is a 413."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"a body holds at most {limit} bytes", detail={"limit": limit})
    parts: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"a body holds at most {limit} bytes", detail={"limit": limit}
                )
            parts.append(chunk)
    except aiohttp.web.RequestPayloadError:
        raise _unreadable(request) from None
    return b"".join(parts)


def _unreadable(request: Any) -> BadRequest:
    encoding = request.headers.get("Content-Encoding")
    if encoding:
        return BadRequest(
            f"the body is not {encoding} data, as its Content-Encoding says",
            detail={"header": "Content-Encoding"},
        )
    return BadRequest("the body could not be read as its headers describe it")


@aiohttp.web.middleware
async def refuse_in_json(request: Any, handler: Any) -> Any:
    """aiohttp's own refusals in the one error shape rather than plain text: the
    router's, raised before any view runs, 404 of a path no view has (a trailing slash or
    another case included) and 405 of a method a view lacks (on a path ``Views`` did not
    declare; its own paths are answered by ``Views._refuse_other_methods``), and any
    other it raises (413 past ``client_max_size`` from a plain view's ``request.read()``).

    Not every refusal can be caught here: a request aiohttp's parser cannot read (a
    malformed request line or header, a ``Content-Encoding`` it has no decoder for, such
    as br or zstd without Brotli or backports.zstd) is answered with aiohttp's
    plain-text 400 by the protocol handler, before the app and its middlewares run.
    """
    try:
        return await handler(request)
    except aiohttp.web.HTTPException as refusal:
        if refusal.status < 400 or refusal.content_type == "application/json":
            raise
        error = _as_error(request, refusal)
        return aiohttp.web.json_response(
            error.body(), status=refusal.status, headers=error.headers or None
        )


def _as_error(request: Any, refusal: aiohttp.web.HTTPException) -> HttpError:
    if isinstance(refusal, aiohttp.web.HTTPMethodNotAllowed):
        return MethodNotAllowed(request.method, sorted(refusal.allowed_methods))
    if isinstance(refusal, aiohttp.web.HTTPNotFound) and (
        refusal is request.match_info.http_exception  # the router's: no route matched
    ):
        return NotFound("no such path", detail={"path": request.path})
    kept = {h: refusal.headers[h] for h in REFUSAL_HEADERS if h in refusal.headers}
    return HttpError(refusal.text or refusal.reason, headers=kept)
