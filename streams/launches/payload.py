"""The API's answer, decoded into records: a JSON array whose elements stand alone.

Python's JSON parser refuses some valid JSON (an integer of over 4,300 digits, nesting
deeper than the interpreter's recursion limit). One such record must cost one
rejection, as it does in the worker, which decodes each record of ``launches.raw`` on
its own, not the whole run: when the whole answer cannot be decoded, it is cut into
its top-level elements by a scanner of strings and brackets, and each element is
decoded alone; one that still fails becomes an :class:`Undecodable` record, rejected by
the rule with its reason. An answer that is not a complete array (cut short, a proxy's
error page) is :class:`NotJson`: the request is tried again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_OUTSIDE = re.compile(r'["\[\]{},]')
_INSIDE = re.compile(r'["\\]')


class NotJson(ValueError):
    """The answer is not a JSON value at all (cut short, another kind of document)."""


class NotArray(ValueError):
    """The answer is JSON, but not an array."""


@dataclass(frozen=True)
class Undecodable:
    """An element of the answer's array that this parser cannot decode, and its text."""

    reason: str
    text: str


def decode_array(body: bytes) -> list[Any]:
    """The records of the JSON array ``body``; NotJson or NotArray otherwise."""
    try:
        records = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        records = _element_by_element(body, exc)
    if not isinstance(records, list):
        raise NotArray(f"the answer is a JSON {type(records).__name__}, not an array")
    return records


def _element_by_element(body: bytes, error: BaseException) -> list[Any]:
    try:
        text = body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        text = None
    elements = split_array(text.lstrip("\ufeff")) if text is not None else None
    if elements is None:
        raise NotJson(f"the answer is not JSON: {str(error)[:120]}") from error
    return [_decoded(element) for element in elements]


def _decoded(element: str) -> Any:
    try:
        return json.loads(element)
    except (ValueError, RecursionError) as exc:
        reason = f"not JSON this parser reads: {type(exc).__name__}: {str(exc)[:120]}"
        return Undecodable(reason, element.strip())


def split_array(text: str) -> list[str] | None:
    """The texts of the top-level elements of the JSON array ``text``, or None when it is
    not one complete array. Brackets are counted, not matched: an element whose
    brackets disagree is left for its own decoding to refuse."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        return None
    depth, pos, begin = 1, start + 1, start + 1
    elements: list[str] = []
    while True:
        found = _OUTSIDE.search(text, pos)
        if found is None:
            return None
        char, pos = found.group(), found.end()
        if char == '"':
            closing = _string_end(text, pos)
            if closing is None:
                return None
            pos = closing
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                last = text[begin : found.start()]
                if last.strip():
                    elements.append(last)
                elif elements:
                    return None  # a trailing comma
                return elements if not text[pos:].strip() else None
        elif depth == 1:  # a comma between two elements
            elements.append(text[begin : found.start()])
            begin = pos


def _string_end(text: str, pos: int) -> int | None:
    """Where the string whose content starts at ``pos`` ends (after its quote)."""
    while True:
        found = _INSIDE.search(text, pos)
        if found is None:
            return None
        if found.group() == '"':
            return found.end()
        pos = found.end() + 1  # an escape: skip the escaped character
