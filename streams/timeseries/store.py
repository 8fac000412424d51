"""The write commands of ``timeseries.writes`` applied to one partition's table (pure).

A command is ``{"op", "id", "rid", ...}``: ``create`` (``name``, ``at``, points),
``append`` (points) or ``delete``. Points travel as the chunks' base64 arrays, already
checked, sorted and one per time by the worker that took the request.

Every command has a request id ``rid`` (the client's ``Idempotency-Key``, else one the
receiving worker drew) and its answer is kept under ``r|<rid>``: a command whose answer
is there is not applied again, whether a client retried it or Kafka delivered it again
after a crash, and the waiting request reads its answer there.

Writes go out in phases (``PHASES``), each acknowledged before the next: chunks before
the index that points at them, then the meta and the partition's series count, then
the answers and the tombstones of a deleted series' chunks. So an answer, once seen,
stands for a write that is complete, and a crash leaves at worst chunks nothing points
at (written again identically when the command is replayed: writes are by time, the
last value wins).
"""

from __future__ import annotations

from typing import Any, Protocol

from streams.timeseries import chunks
from streams.timeseries.chunks import Rewrite, chunk_key, meta_key
from streams.timeseries.points import Points

COUNT = "count"
Answer = dict[str, Any]


class State(Protocol):
    """A partition's table in one batch: streams.common.exactly_once.PartitionState."""

    def get(self, key: Any) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...


def answer_key(rid: str) -> str:
    return f"r|{rid}"


def answered_key(at_ms: int, rid: str) -> str:
    """The answers in the order they were given: expiry reads only the expired ones."""
    return f"a|{at_ms:015d}|{rid}"  # 15 digits: in order until the year 33658


def phase(key: str, deleted: bool) -> int:
    """Chunks written, then meta and count, then answers and chunks deleted (see above)."""
    if key.startswith("c|"):
        return 2 if deleted else 0
    return 2 if key.startswith(("r|", "a|")) else 1


def expire_answers(state: Any, before_ms: int, limit: int) -> int:
    """Forget at most ``limit`` answers given before ``before_ms`` (oldest first): a
    request replayed after that is applied anew. ``state``: a RocksPartition."""
    done = 0
    for key, _ in state.items_between("a|", answered_key(before_ms, "")):
        if done >= limit:
            break
        rid = key.split("|", 2)[2]
        del state[answer_key(rid)]
        del state[key]
        done += 1
    return done


def answer(status: int, body: Any) -> Answer:
    return {"status": status, "body": body}


def refusal(status: int, message: str, series_id: str) -> Answer:
    """A refusal in the API's one error shape."""
    return answer(status, {"error": message, "detail": {"id": series_id}})


def replayed(kept: dict[str, Any], digest: str | None) -> Answer:
    """The answer to a request already answered: the same answer, unless the request
    reuses an ``Idempotency-Key`` with another body (422, nothing applied)."""
    if kept.get("digest") != digest:
        message = "this Idempotency-Key was used for another request"
        return answer(422, {"error": message, "detail": {"field": "Idempotency-Key"}})
    return {"status": kept["status"], "body": kept["body"]}


def apply(state: State, command: dict[str, Any], points: Points, now_ms: int) -> Answer:
    """Apply ``command`` once; its answer (kept, and returned, also for a repeat)."""
    rid = command["rid"]
    kept = state.get(answer_key(rid))
    if kept is not None:
        return replayed(kept, command.get("digest"))
    op = command["op"]
    if op == "create":
        result = _create(state, command, points)
    elif op == "append":
        result = _append(state, command["id"], points)
    else:
        result = _delete(state, command["id"])
    state.put(answer_key(rid), {**result, "at": now_ms, "digest": command.get("digest")})
    state.put(answered_key(now_ms, rid), 1)
    return result


def _create(state: State, command: dict[str, Any], points: Points) -> Answer:
    series_id = command["id"]
    if state.get(meta_key(series_id)) is not None:
        return refusal(409, "a series with this id exists", series_id)
    meta = {"id": series_id, "name": command.get("name"), "created": command["at"]}
    meta.update(index=[], next=0, count=0)
    result = _write_points(state, meta, points)
    if result["status"] != 200:
        return result
    counted = state.get(COUNT) or {"series": 0}
    state.put(COUNT, {"series": counted["series"] + 1})
    return answer(201, result["body"])


def _append(state: State, series_id: str, points: Points) -> Answer:
    meta = state.get(meta_key(series_id))
    if meta is None:
        return refusal(404, "no such series", series_id)
    return _write_points(state, meta, points)


def _write_points(state: State, meta: dict[str, Any], points: Points) -> Answer:
    series_id = meta["id"]
    rewrite = Rewrite(meta["index"], meta["next"])

    def read_chunk(number: int) -> Points:
        return chunks.decode(state.get(chunk_key(series_id, number)))

    rewrite.apply(points, read_chunk)
    if rewrite.count > chunks.MAX_POINTS:
        return refusal(413, f"a series holds at most {chunks.MAX_POINTS} points", series_id)
    for number, piece in rewrite.chunks.items():
        state.put(chunk_key(series_id, number), chunks.encode(piece))
    for number in rewrite.dropped:
        state.delete(chunk_key(series_id, number))
    meta = {**meta, "index": rewrite.index, "next": rewrite.next_number, "count": rewrite.count}
    state.put(meta_key(series_id), meta)
    return answer(200, {"id": series_id, "count": rewrite.count})


def _delete(state: State, series_id: str) -> Answer:
    meta = state.get(meta_key(series_id))
    if meta is None:
        return refusal(404, "no such series", series_id)
    state.delete(meta_key(series_id))
    for _first, _points, number in meta["index"]:
        state.delete(chunk_key(series_id, number))
    counted = state.get(COUNT) or {"series": 1}
    state.put(COUNT, {"series": max(counted["series"] - 1, 0)})
    return answer(204, None)
