"""The checkpoint: what a restarted sidecar needs to carry on where it was (docs/redis-keys.md).

``engine`` is ``Engine.to_dict()``; ``sidecar`` is what the sidecar adds: pinned feature types, known
features and keys, watermarks, the counters behind the metrics and the ``P:ingest`` entries the engine
holds but Redis has not seen acknowledged yet. ``capture`` and ``restore`` move that state out of and
into the components that own it; ``encode`` and ``decode`` are the format; ``load_engine`` rebuilds a
checkpoint's engine and proves it usable before it replaces a live one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from driftwatch.detect import Engine
from driftwatch.sidecar.admission import Admission
from driftwatch.sidecar.encode import dumps, dumps_array, with_member
from driftwatch.sidecar.events import DriftEvents, EventKey
from driftwatch.sidecar.ingest import IngestCounters
from driftwatch.sidecar.queue import StreamKey
from driftwatch.sidecar.validate import Validator

CHECKPOINT_VERSION = 1
log = logging.getLogger("driftwatch.sidecar")


@dataclass
class SidecarState:
    types: dict[str, str]
    features: list[str]
    keys: list[str]
    watermarks: dict[str, float]
    ingested: dict[StreamKey, int]
    rejected: dict[str, int]
    events: dict[EventKey, int]
    #: ``P:ingest`` entry ids whose samples this checkpoint holds, not known to be acknowledged
    stream: list[str] = field(default_factory=list)


@dataclass
class Checkpoint:
    pod: str
    time: float
    engine: dict[str, Any]  # Engine.to_dict()
    sidecar: SidecarState


def capture(
    validator: Validator,
    admission: Admission,
    counters: IngestCounters,
    events: DriftEvents,
    stream: list[str] | None = None,
) -> SidecarState:
    """Copies, taken on the event loop (where these components live)."""
    return SidecarState(
        types=dict(validator.types),
        features=sorted(validator.seen),
        keys=list(admission.keys.keys),
        watermarks=admission.watermarks.to_dict(),
        ingested=dict(counters.ingested),
        rejected=dict(counters.rejected),
        events=dict(events.counts),
        stream=stream or [],
    )


def restore(
    s: SidecarState,
    validator: Validator,
    admission: Admission,
    counters: IngestCounters,
    events: DriftEvents,
    own: bool = True,
) -> None:
    """Types, features and keys stay pinned as they were. ``own``: this pod's checkpoint, whose
    counters and watermarks continue; a sibling's (``own=False``) gives the engine and what the
    engine's streams need, while the counters -- this pod's metrics -- start at zero."""
    validator.types.update(s.types)
    validator.seen.update(s.features)
    admission.keys.restore(s.keys)
    if not own:
        return
    admission.watermarks.restore(s.watermarks)
    for stream, n in s.ingested.items():
        counters.ingested[stream] += n
    for reason, n in s.rejected.items():
        counters.rejected[reason] += n
    for ek, n in s.events.items():
        events.counts[ek] += n


def encode(engine: Engine, side: SidecarState, pod: str, started: float | None = None) -> bytes:
    """On the engine thread; the engine's streams built and serialised one by one (``dumps_array``: the
    loop gets the GIL in between, one stream's dict exists at a time) and the whole written with few
    copies of the text (``with_member``): with 1,000 streams the peak was ~33 MB, which the allocator
    then kept, and is ~12. ``started``: when the checkpoint began -- every sample answered 202 before
    then is in it (docs/sidecar.md)."""
    streams = dumps_array(engine.iter_stream_dicts())
    now = time.time()
    head = dumps(
        {
            "version": CHECKPOINT_VERSION,
            "pod": pod,
            "time": now,
            "started": now if started is None else started,
            "sidecar": {
                "types": side.types,
                "features": side.features,
                "keys": side.keys,
                "watermarks": side.watermarks,
                "ingested": [[f, k, n] for (f, k), n in side.ingested.items()],
                "rejected": side.rejected,
                "events": [[f, k, t, r, n] for (f, k, t, r), n in side.events.items()],
                "stream": side.stream,
            },
        }
    )
    engine_doc = with_member(dumps(engine.to_dict(streams=False)), "streams", streams)
    del streams  # only one copy of the streams' text from here on
    return with_member(head, "engine", engine_doc)


def decode(raw: bytes) -> Checkpoint | None:
    """None for a checkpoint of another version (or not a checkpoint at all); raises on a corrupt one."""
    doc = orjson.loads(raw)
    if not isinstance(doc, dict) or doc.get("version") != CHECKPOINT_VERSION:
        return None
    sc = doc.get("sidecar") or {}
    side = SidecarState(
        types={str(f): str(t) for f, t in (sc.get("types") or {}).items()},
        features=[str(f) for f in sc.get("features") or []],
        keys=[str(k) for k in sc.get("keys") or []],
        watermarks={str(k): float(v) for k, v in (sc.get("watermarks") or {}).items()},
        ingested={(str(f), str(k)): int(n) for f, k, n in sc.get("ingested") or []},
        rejected={str(r): int(n) for r, n in (sc.get("rejected") or {}).items()},
        # rows of checkpoints written before the reason label have four fields
        events={_event_key(row): int(row[-1]) for row in sc.get("events") or []},
        stream=[str(i) for i in sc.get("stream") or []],
    )
    engine = doc["engine"]
    if not isinstance(engine, dict) or not isinstance(engine.get("streams"), list):
        raise ValueError("engine: must be an object with a list of streams")
    return Checkpoint(str(doc.get("pod")), float(doc.get("time") or 0.0), engine, side)


def load_engine(d: dict[str, Any], spec: Any, name: str) -> tuple[Engine, list[str]]:
    """``Engine.from_dict`` of a checkpoint's engine, proven usable -- its views and its own checkpoint
    build -- before it replaces anything live. A stream that does not load or does not serve is left
    out (and named in the returned list) rather than the whole checkpoint, and rather than a sidecar
    that restores it and then fails every status, scrape and checkpoint. Raises when nothing is usable
    at all. On the engine thread: a whole engine is a few hundred ms with 1,000 streams."""
    try:
        return _usable(d, spec, name), []
    except Exception:
        pass
    good, bad = [], []
    for s in d["streams"]:
        try:
            _usable({**d, "streams": [s]}, spec, name)
            good.append(s)
        except Exception as e:
            what = f"{s.get('feature')!r}/{s.get('key')!r}" if isinstance(s, dict) else repr(s)[:80]
            bad.append(f"{what}: {type(e).__name__}: {e}"[:300])
    return _usable({**d, "streams": good}, spec, name), bad


def _usable(d: dict[str, Any], spec: Any, name: str) -> Engine:
    engine = Engine.from_dict(d, spec, name=name)
    engine.streams()
    engine.summary()
    dumps(engine.to_dict())
    return engine


def _event_key(row: list[Any]) -> EventKey:
    f, k, t = (str(v) for v in row[:3])
    return (f, k, t, str(row[3]) if len(row) == 5 else "")
