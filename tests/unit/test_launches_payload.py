"""Decoding the API's answer: one record Python's parser cannot read is one rejection,
an answer cut short is retried, JSON that is no array fails."""

from __future__ import annotations

import json

import pytest

from streams.launches.models import check_all
from streams.launches.payload import NotArray, NotJson, Undecodable, decode_array, split_array
from tests.support.launches import SAMPLE, payload


def test_a_record_with_a_5000_digit_integer_costs_one_rejection() -> None:
    """Valid JSON over Python's integer-digits limit: that record alone is undecodable."""
    records = payload(SAMPLE)
    body = json.dumps(records)[:-1] + ', {"id": "big", "flight_number": ' + "9" * 5000 + "}]"
    decoded = decode_array(body.encode())
    assert decoded[:-1] == records
    assert isinstance(decoded[-1], Undecodable)
    checked = check_all(decoded)
    assert len(checked.launches) == len(records)
    assert [(r.index, r.decoded) for r in checked.rejected] == [(len(records), False)]


def test_nesting_deeper_than_the_recursion_limit_costs_one_rejection() -> None:
    """A record nested 100,000 deep in an ignored field: rejected, the rest kept."""
    deep = '{"id": "deep", "junk": ' + "[" * 100_000 + "]" * 100_000 + "}"
    body = f"[{json.dumps(payload(SAMPLE)[0])}, {deep}]".encode()
    decoded = decode_array(body)
    assert decoded[0]["name"] == "FalconSat" and isinstance(decoded[1], Undecodable)


@pytest.mark.parametrize(
    "body",
    [b'[{"id": "a"}, {"id": "b"', b'[{"id": "a"}', b"<html>502</html>", b"[1, 2,]", b""],
)
def test_an_answer_cut_short_or_not_json_is_not_json(body: bytes) -> None:
    """Retried by the extract: a truncated array is no array of fewer records."""
    with pytest.raises(NotJson):
        decode_array(body)


@pytest.mark.parametrize("body", [b'{"docs": []}', b"null", b"7"])
def test_json_that_is_no_array_is_refused(body: bytes) -> None:
    with pytest.raises(NotArray):
        decode_array(body)


def test_the_splitter_respects_strings_and_escapes() -> None:
    """Commas, brackets and escaped quotes inside strings do not split an element."""
    text = '[ {"a": "x,]}[\\"\\\\"}, [1, [2]], "s,\\"", 3 ]'
    elements = split_array(text)
    assert elements is not None
    assert [json.loads(e) for e in elements] == json.loads(text)


def test_a_bom_and_utf16_answers_are_read() -> None:
    """Encodings JSON allows are detected as the whole-answer parser does."""
    records = payload(SAMPLE)[:2]
    assert decode_array(json.dumps(records).encode("utf-16")) == records
    big = json.dumps(records)[:-1] + ", " + "1" * 5000 + "]"
    decoded = decode_array(("\ufeff" + big).encode("utf-8"))
    assert decoded[:2] == records and isinstance(decoded[2], Undecodable)
