"""JSON out: orjson with numpy scalars and arrays allowed and anything else as ``str`` (one set of
options for answers, checkpoints, summaries and events).

Serialising never fails on text: a string orjson cannot write (a lone UTF-16 surrogate, which
validation refuses but which could still arrive in an old checkpoint) is written with U+FFFD in its
place and counted in ``REPAIRS`` (``driftwatch_invalid_text_repairs_total``). Before, one such
category made every later checkpoint, summary, event flush and ``/v1/status`` fail.
"""

from __future__ import annotations

import logging
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


def join_list(parts: list[bytes]) -> orjson.Fragment:
    """Items serialised one by one (``dumps``) as one JSON array to embed in a larger document. For
    megabyte-sized lists built off the event loop: one orjson call holds the GIL (and so stalls the
    loop) for its whole length; one call per item lets the loop in between, and the items' dicts can be
    built one at a time. The text is copied once (``b"[" + b",".join(...) + b"]"`` copies it twice)."""
    pieces = [b"["]
    for p in parts:
        pieces += (p, b",")
    pieces[-1] = b"]" if parts else b"[]"
    return orjson.Fragment(b"".join(pieces))
