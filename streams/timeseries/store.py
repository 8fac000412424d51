"""The write commands of ``timeseries.writes`` applied to one partition's table (pure).

A command is ``{"op", "id", "rid", ...}``: ``create`` (``name``, ``at``, points),
``append`` (points) or ``delete``. Points travel as the chunks' base64 arrays, already
checked, sorted and one per time by the worker that took the request.

Every command has a request id ``rid`` (the client's ``Idempotency-Key``, else one the
receiving worker drew) and its answer is kept under ``r|<rid>``: a command whose answer
is there is not applied again, whether a client retried it or Kafka delivered it again
after a crash, and the waiting request reads its answer there.

Writes go out in phases (``phase``), each acknowledged before the next: new chunks
(copy on write: never over a chunk the stored index names) and delete markers, then
the meta and the partition's series count, then the answers and the tombstones of
chunks no index names any more. So an answer, once seen, stands for a write that is
complete. A crash between phases leaves a state the command's replay (Kafka delivers
it again: its offset was not committed) completes exactly once:

- after the chunks: the stored index still names intact chunks; the replay writes the
  same new chunks again;
- after the meta of a create: the meta carries the create's request id, so the replay
  answers 201 rather than 409; the count keeps the ids of its last changes, so it is
  changed once;
- after the meta of a delete: the marker ``d|<id>`` (written in the first phase with
  the request id and the chunk numbers) lets the replay finish it and answer 204;
- after the meta of an append: re-applied, it writes the same points (the last value of
  a time wins); the chunks the crashed attempt replaced stay unreferenced (space only).

Only successes are kept: a refusal changed nothing, and a retry is judged afresh.
"""

from __future__ import annotations

from typing import Any, Protocol

from streams.timeseries import chunks
from streams.timeseries.chunks import Rewrite, chunk_key, meta_key
from streams.timeseries.points import Points

COUNT = "count"
#: Request ids kept with the count: at least the commands of one batch (settings.py).
COUNTED_BY = 1024
Answer = dict[str, Any]


class State(Protocol):
    """A partition's table in one batch: streams.common.exactly_once.PartitionState."""

    def get(self, key: Any) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...


def answer_key(rid: str) -> str:
    return f"r|{rid}"


def deleting_key(series_id: str) -> str:
    """A delete under way: its request id and the series' chunks (see the docstring)."""
    return f"d|{series_id}"


def answered_key(at_ms: int, rid: str) -> str:
    """The answers in the order they were given: expiry reads only the expired ones."""
    return f"a|{at_ms:015d}|{rid}"  # 15 digits: in order until the year 33658


def phase(key: str, deleted: bool) -> int:
    """Chunks and delete markers written, then meta and count, then answers and chunks
    deleted (see above)."""
    if key.startswith("c|"):
        return 2 if deleted else 0
    if key.startswith("d|"):
        return 0
    return 2 if key.startswith(("r|", "a|")) else 1


def expire_answers(state: Any, before_ms: int, limit: int) -> int:
    """Forget at most ``limit`` answers given before ``before_ms`` (oldest first): a
    request replayed after that is applied anew. ``state``: a RocksPartition."""
    done = 0
    for key, _ in state.items_between("a|", answered_key(before_ms, "")):
        if done >= limit:
            break
        rid = key.split("|", 2)[2]
        kept = state.get(answer_key(rid))
        if kept is not None and kept.get("marker"):
            del state[kept["marker"]]
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
    """Apply ``command`` once; its answer (kept when it is a success, and returned)."""
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
        result = _delete(state, command["id"], rid)
    if result["status"] < 300:
        # A refusal changed nothing: a retry is judged afresh (an append refused with 404
        # before its series existed is applied once the series does).
        kept = {**result, "at": now_ms, "digest": command.get("digest")}
        if op == "delete":
            kept["marker"] = deleting_key(command["id"])
        state.put(answer_key(rid), kept)
        state.put(answered_key(now_ms, rid), 1)
    return result


def _create(state: State, command: dict[str, Any], points: Points) -> Answer:
    series_id, rid = command["id"], command["rid"]
    found = state.get(meta_key(series_id))
    if found is not None:
        if found.get("rid") == rid:
            # This very create, cut short by a crash after its meta but before its answer.
            _count(state, rid, +1)
            return answer(201, {"id": series_id, "count": found["created_count"]})
        return refusal(409, "a series with this id exists", series_id)
    meta = {"id": series_id, "name": command.get("name"), "created": command["at"], "rid": rid}
    # Chunk numbers a deleted series of this id used may still be named by a stored
    # index until that delete is durable: a new series of the id starts after them.
    deleted = state.get(deleting_key(series_id))
    first = max(deleted["chunks"], default=-1) + 1 if deleted is not None else 0
    meta.update(index=[], next=first, count=0)
    result = _write_points(state, meta, points)
    if result["status"] != 200:
        return result
    # The create's own answer, for its replay (later writes change the meta's count).
    written = state.get(meta_key(series_id))
    state.put(meta_key(series_id), {**written, "created_count": result["body"]["count"]})
    _count(state, rid, +1)
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


def _delete(state: State, series_id: str, rid: str) -> Answer:
    meta = state.get(meta_key(series_id))
    if meta is None:
        marker = state.get(deleting_key(series_id))
        if marker is None or marker["rid"] != rid:
            return refusal(404, "no such series", series_id)
        # This very delete, cut short by a crash after the meta went: finish it.
        numbers = marker["chunks"]
    else:
        numbers = [number for _first, _points, number in meta["index"]]
        # Before the meta goes: what a replay needs to finish the delete.
        state.put(deleting_key(series_id), {"rid": rid, "chunks": numbers})
        state.delete(meta_key(series_id))
    for number in numbers:
        state.delete(chunk_key(series_id, number))
    _count(state, rid, -1)
    return answer(204, None)


def _count(state: State, rid: str, change: int) -> None:
    """The partition's count of series, changed once per request id: the ids of the last
    ``COUNTED_BY`` changes are kept with it, so a command replayed after a crash that
    left its count written does not count twice."""
    counted = state.get(COUNT) or {"series": 0, "by": []}
    by = counted.get("by", [])
    if rid in by:
        return
    state.put(COUNT, {"series": max(counted["series"] + change, 0), "by": [*by, rid][-COUNTED_BY:]})
