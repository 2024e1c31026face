"""Request bodies to JSON values: pure, no I/O.

orjson for speed; the stdlib only as a fallback so that ``NaN``/``Infinity``/``1e999`` (which orjson
refuses) become per-sample ``not_finite`` rejections instead of failing the whole body. NDJSON is
decoded line by line so one bad line never loses the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import orjson

#: how deep JSON may nest: orjson's own limit (a body any deeper is refused whole, 400)
MAX_DEPTH = 1024
#: rejections a 202 answer lists in full; beyond them it gives counts per reason
MAX_EXAMPLES = 100


class Rejection(TypedDict):
    """One rejected sample (or object, or NDJSON line) in a 202 answer; ``reason`` is the metric label."""

    index: int
    error: str
    reason: str


class BodyError(ValueError):
    """The whole body is unusable (HTTP 400); ``reason`` is a metric label, the message names the problem."""

    def __init__(self, message: str, reason: str = "invalid_json") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class Rejections:
    """The rejections of one batch: every one counted by reason, the first ``MAX_EXAMPLES`` kept in full.

    A 1 MiB body of ``[0,0,...]`` is 524k rejections: as a list of dicts that was ~250 MB of heap and a
    54 MB answer. Here it is one counter, and the answer lists a hundred examples and the counts. Counts
    are what the metrics need (``IngestCounters.count``); the examples are what a person reads.
    """

    __slots__ = ("by_reason", "examples", "limit", "total")

    def __init__(self, limit: int = MAX_EXAMPLES) -> None:
        self.limit = limit
        self.total = 0
        self.by_reason: dict[str, int] = {}
        self.examples: list[Rejection] = []

    def append(self, r: Rejection) -> None:
        self.total += 1
        reason = r["reason"]
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.examples) < self.limit:
            self.examples.append(r)

    def extend(self, rs: Iterable[Rejection]) -> None:
        for r in rs:
            self.append(r)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def __iter__(self) -> Iterator[Rejection]:
        """The examples (all of them while there are at most ``limit``)."""
        return iter(self.examples)

    def __getitem__(self, i: int) -> Rejection:
        return self.examples[i]

    def answer(self) -> dict[str, Any]:
        """The rejection part of a 202 answer (docs/sidecar.md)."""
        return {"rejected": self.examples, "rejectedCount": self.total, "rejectedReasons": self.by_reason}


def payload_error(e: BaseException) -> str:
    """aiohttp's reason for a body it could not read (``Can not decode content-encoding: gzip``)."""
    text = str(e).split("message:", 1)[-1].strip()
    return text or "could not be read"


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit"):  # nesting: the stdlib would recurse until RecursionError
            raise BodyError(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    if not body.strip():
        raise BodyError("malformed JSON: empty body")
    try:
        return json.loads(body)
    except RecursionError:
        raise BodyError(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BodyError(f"malformed JSON: {e}") from None


#: placeholder for an NDJSON line that did not decode (already rejected)
BAD_LINE = object()


#: NDJSON lines decoded between two yields of ``split_ndjson`` (~1 ms of the event loop)
LINES_PER_STEP = 1000


def split_ndjson(body: bytes) -> Generator[None, None, tuple[list[Any], Rejections]]:
    """Decode NDJSON, in steps (a yield every ``LINES_PER_STEP`` lines: a 1 MiB body is 500k lines); a
    malformed line becomes ``BAD_LINE`` plus a rejection whose index is the line number among non-blank
    lines."""
    items: list[Any] = []
    bad = Rejections()
    for lineno, line in enumerate(x for x in body.split(b"\n") if x.strip()):
        if lineno % LINES_PER_STEP == LINES_PER_STEP - 1:
            yield
        try:
            items.append(loads(line))
        except BodyError as e:
            items.append(BAD_LINE)
            bad.append({"index": lineno, "error": e.message, "reason": "invalid_json"})
    return items, bad


_CT_NDJSON = re.compile(r"^\s*application/(x-ndjson|jsonl|x-jsonlines)", re.I)


def is_ndjson(content_type: str) -> bool:
    return not content_type.startswith("application/json") and bool(_CT_NDJSON.match(content_type))


@dataclass(frozen=True)
class _Spelling:
    """How a plain batch is written, around the feature name F and the numbers."""

    head: bytes  # up to the first F
    mid: bytes  # between F and its number
    sep: bytes  # between a number and the next F
    tail: bytes  # after the last number


#: the two spellings of the common batch: compact (JSON.stringify, Go, orjson) and Python's json.dumps
_SPELLINGS = (
    _Spelling(b'{"samples":[{"feature":"', b'","value":', b'},{"feature":"', b"}]}"),
    _Spelling(b'{"samples": [{"feature": "', b'", "value": ', b'}, {"feature": "', b"}]}"),
)
#: what a flat list of JSON numbers may contain (no quotes, literals, brackets: those fall back)
_NUMBER_BYTES = b"0123456789-+.eE,"
#: number bytes a separator may hold for ``_Flattener``'s one-pass delete: only the exponent's ``e``
#: and ``E`` (of ``"feature"``, ``"value"``), which a number rarely has (then it falls back to replace)
_EXPONENT = frozenset(b"eE")
_CLOSE = ord("}")
#: ``}`` -> ``,``: each separator leaves its one ``}`` behind, as the comma between two numbers
_CLOSE_TO_COMMA = bytes.maketrans(b"}", b",")


@dataclass(frozen=True, slots=True)
class _Flattener:
    """The separator between two numbers of one feature's plain batch (``},{"feature":"F","value":``)
    and how to take every one of them out of the bytes.

    ``bytes.replace`` with a 30-byte pattern re-prepares its search at every one of the ~1,000 matches
    of a batch: it was a quarter of the sidecar's CPU under 1,000-sample bodies. ``flat`` instead counts
    the separators (one search) and deletes their bytes in one ``bytes.translate`` pass, keeping each
    one's ``}`` as the comma; that is exactly ``replace`` when the count of deleted bytes is exactly
    the separators' (then no byte outside them was deleted). A feature whose name holds a digit,
    sign, dot or ``}`` (``f1``) takes ``replace`` directly."""

    sep: bytes
    delete: bytes | None  # None: the separator holds number bytes, use replace

    @classmethod
    def of(cls, sep: bytes) -> _Flattener:
        own = set(sep)
        numeric = (own & set(_NUMBER_BYTES)) - _EXPONENT - {ord(",")}
        usable = sep.count(_CLOSE) == 1 and not numeric
        return cls(sep, bytes(sorted(own - {_CLOSE})) if usable else None)

    def flat(self, inner: bytes) -> tuple[bytes, int]:
        """``inner`` with every separator replaced by a comma, and how many there were."""
        sep = self.sep
        n = inner.count(sep)
        if self.delete is not None:
            flat = inner.translate(_CLOSE_TO_COMMA, self.delete)
            if len(flat) == len(inner) - n * (len(sep) - 1):
                return flat, n
        return inner.replace(sep, b","), n


#: one per (spelling, feature) seen in a plain batch; bounded (any name may arrive)
_FLATTENERS: dict[bytes, _Flattener] = {}
_FLATTENERS_MAX = 256


def _flattener(sep: bytes) -> _Flattener:
    f = _FLATTENERS.get(sep)
    if f is None:
        if len(_FLATTENERS) >= _FLATTENERS_MAX:
            _FLATTENERS.clear()
        f = _FLATTENERS[sep] = _Flattener.of(sep)
    return f


def plain_envelope(body: bytes) -> tuple[str, list[int | float]] | None:
    """The most frequent batch, read byte for byte: ``{"samples": [{"feature": F, "value": <number>},
    ...]}`` with one feature F, in either spelling of ``_SPELLINGS``. Returns (F, numbers) without
    building a dict per sample (orjson's dicts and checking them cost more than everything else a
    sample goes through); None for anything else, which then takes the general decoder and
    validator. The feature name is the validator's to check."""
    sp = next((sp for sp in _SPELLINGS if body.startswith(sp.head)), None)
    if sp is None:
        return None
    start = len(sp.head)
    end = body.find(b'"', start, start + 65)  # feature names are at most 63 characters
    if end < 0:
        return None
    feature = body[start:end]
    if b"\\" in feature or not feature.isascii():  # escapes: not a feature name, or not as written
        return None
    lead = body[:end] + sp.mid
    if not body.startswith(lead) or not body.endswith(sp.tail):
        return None
    inner = body[len(lead) : len(body) - len(sp.tail)]
    flat, seps = _flattener(sp.sep + feature + sp.mid).flat(inner)
    if not flat or flat.translate(None, _NUMBER_BYTES):
        return None
    try:
        numbers = orjson.loads(b"[" + flat + b"]")
    except orjson.JSONDecodeError:  # e.g. 1e999, or two commas: the general path explains it
        return None
    if len(numbers) != seps + 1:  # a comma of the body's own (``"value":1,2}``): not JSON, explained there
        return None
    return feature.decode("ascii"), numbers
