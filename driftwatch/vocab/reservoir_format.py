"""How a sample reservoir is stored in Redis: the sidecar writes it, ``driftwatch scan`` reads it.

A reservoir is a hash field of ``P:reservoir:{bucket}:{pod}`` or ``P:reference:{pod}``
(docs/redis-keys.md): the field names the stream, the value holds how many values the pod saw and a
uniform sample of them. Defined here, beside the key layout, so the writer and the reader cannot
disagree; standard library only (both sides handle the payload with numpy).

* field: the JSON array ``[feature, key]`` (compact) -- keys are label values and may contain anything;
* value: a 9-byte header -- the kind (``n`` numeric, ``c`` categorical) and the count of values seen
  (little-endian uint64) -- then the sample: numeric as little-endian float32 (7 significant digits;
  magnitudes beyond float32's range are saturated), categorical as a JSON array of strings.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array

NUMERIC, CATEGORICAL = b"n", b"c"
#: kind, values seen
HEADER = struct.Struct("<cQ")
#: numeric payload: little-endian float32
FLOAT_DTYPE = "<f4"
FLOAT_MAX = 3.4028234663852886e38


def stream_field(feature: str, key: str) -> str:
    """The hash field of one stream.

    >>> stream_field("latency", "/pay")
    '["latency","/pay"]'
    """
    return json.dumps([feature, key], separators=(",", ":"), ensure_ascii=False)


def parse_stream_field(field: str | bytes) -> tuple[str, str] | None:
    """(feature, key) of a field; None for anything else (never raises: the reader skips it)."""
    try:
        value = json.loads(field)
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def header(kind: bytes, seen: int) -> bytes:
    return HEADER.pack(kind, seen)


def parse_header(blob: bytes) -> tuple[bytes, int, bytes] | None:
    """(kind, seen, payload), or None when ``blob`` is no reservoir."""
    if len(blob) < HEADER.size:
        return None
    kind, seen = HEADER.unpack_from(blob)
    if kind not in (NUMERIC, CATEGORICAL):
        return None
    return kind, seen, blob[HEADER.size :]


def bucket_start(ts: float, width: int) -> int:
    """The start of the bucket ``ts`` falls in (epoch seconds, a multiple of ``width``).

    >>> bucket_start(1700000123.5, 300)
    1700000100
    """
    return int(ts // width) * width


def encode_categories(values: list[str]) -> bytes:
    """A categorical payload."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def decode_categories(payload: bytes) -> list[str] | None:
    """A categorical payload's values; None when it is not a JSON array of strings."""
    try:
        values = json.loads(payload)
    except ValueError:
        return None
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return values
    return None


def decode(blob: bytes) -> tuple[bytes, int, list[str] | array[float]] | None:
    """(kind, seen, values) of a stored reservoir -- categorical values as str, numeric ones as an
    ``array('f')`` (``numpy.asarray`` takes it without a copy of each value); None when ``blob`` is no
    reservoir (a reader skips it, never fails on it)."""
    parsed = parse_header(blob)
    if parsed is None:
        return None
    kind, seen, payload = parsed
    if kind == CATEGORICAL:
        categories = decode_categories(payload)
        return None if categories is None else (kind, seen, categories)
    if len(payload) % 4:
        return None
    floats = array("f", payload)
    if sys.byteorder == "big":
        floats.byteswap()
    return kind, seen, floats
