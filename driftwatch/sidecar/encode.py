"""JSON out: orjson with numpy scalars and arrays allowed and anything else as ``str`` (one set of
options for answers, checkpoints, summaries and events).

Serialising never fails on text: a string orjson cannot write (a lone UTF-16 surrogate, which
validation refuses but which could still arrive in an old checkpoint) is written with U+FFFD in its
place and counted in ``REPAIRS`` (``driftwatch_invalid_text_repairs_total``). Before, one such
category made every later checkpoint, summary, event flush and ``/v1/status`` fail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
log = logging.getLogger("driftwatch.sidecar")


class _Repairs:
    """Documents written only after replacing text orjson refused (a process-wide count)."""

    count = 0


REPAIRS = _Repairs()


def dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc, option=_OPTS, default=str)
    except orjson.JSONEncodeError as e:
        if "surrogates" not in str(e):
            raise
    REPAIRS.count += 1
    if REPAIRS.count <= 10 or REPAIRS.count % 1000 == 0:
        log.warning("a document held invalid text (lone surrogates): written with U+FFFD in its place")
    return orjson.dumps(_scrub(doc), option=_OPTS, default=str)


def _scrub(v: Any) -> Any:
    """``v`` with every string's lone surrogates replaced by U+FFFD (dict keys too)."""
    if isinstance(v, str):
        return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(v, dict):
        return {_scrub(k): _scrub(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_scrub(x) for x in v]
    return v


def dumps_array(items: Iterable[Any]) -> bytearray:
    """A JSON array written item by item into one buffer. For megabyte-sized lists built off the event
    loop: one orjson call holds the GIL (and so stalls the loop) for its whole length, one per item lets
    the loop in between; ``items`` can be built one at a time (a generator), so their dicts never exist
    all at once; and each item's bytes are freed as soon as they are copied -- kept in a list, orjson's
    output buffers (~3x their length each) held 17 MB for a 5 MB checkpoint of 1,000 streams."""
    out = bytearray(b"[")
    for item in items:
        out += dumps(item)
        out += b","
    if len(out) > 1:
        out[-1:] = b"]"
    else:
        out += b"]"
    return out


def fragment_array(items: Iterable[Any]) -> orjson.Fragment:
    """``dumps_array`` as a fragment to embed in a larger document (``dumps``)."""
    return orjson.Fragment(bytes(dumps_array(items)))


def with_member(head: bytes, key: str, value: bytes | bytearray) -> bytes:
    """JSON object ``head`` (a non-empty object as ``dumps`` writes it) with the member ``key``:
    ``value`` (JSON text) appended, in one copy of ``value`` -- ``dumps`` of a document around a
    fragment copies it into a growing buffer, twice its size at the peak."""
    if not (head.startswith(b"{") and head.endswith(b"}") and len(head) > 2):
        raise ValueError("with_member needs a non-empty JSON object")
    return b"".join((head[:-1], b",", dumps(key), b":", value, b"}"))
