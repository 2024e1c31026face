"""``P:history`` in Redis: a stream of JSON entries, newest last, trimmed to about ``MAXLEN``.

Stream ids are the cursor of a query (newest first), so a page never repeats or skips an entry while
new ones arrive. Filtering happens while reading backwards in batches: a query reads at most the
stream's bounded length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from driftwatch.history.entries import MAXLEN, Entry, Filters
from driftwatch.redisconn import AnyRedis

BATCH = 500


@dataclass(frozen=True)
class Page:
    entries: list[tuple[str, Entry]]
    #: pass as ``cursor`` for the next (older) page; None: there is none
    next: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [{"id": i, **e.to_dict()} for i, e in self.entries], "next": self.next}


async def append(client: AnyRedis, key: str, entry: Entry, maxlen: int = MAXLEN) -> str:
    raw = await client.xadd(
        key, {"entry": json.dumps(entry.to_dict(), separators=(",", ":"))}, maxlen=maxlen, approximate=True
    )
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def query(client: AnyRedis, key: str, filters: Filters) -> Page:
    # ids are insertion times (ms): they bound the read; ``matches`` applies the exact times. An entry
    # is added within a second of its time, hence the slack.
    if filters.cursor:
        upper = f"({filters.cursor}"
    elif filters.until is not None:
        upper = str(int(filters.until * 1000) + 1000)
    else:
        upper = "+"
    lower = str(max(0, int(filters.since * 1000) - 1000)) if filters.since is not None else "-"
    out: list[tuple[str, Entry]] = []
    while True:
        rows = await client.xrevrange(key, max=upper, min=lower, count=BATCH) or []
        for raw_id, fields in rows:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            entry = _decode(fields)
            if entry is not None and filters.matches(entry):
                out.append((entry_id, entry))
                if len(out) == filters.limit:
                    return Page(out, entry_id)
        if len(rows) < BATCH:
            return Page(out, None)
        last = rows[-1][0]
        upper = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _decode(fields: dict[Any, Any] | None) -> Entry | None:
    if not fields:
        return None
    raw = fields.get(b"entry", fields.get("entry"))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return Entry.from_dict(doc) if isinstance(doc, dict) else None
    except (ValueError, TypeError):
        return None
