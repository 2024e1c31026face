"""The 'current' window of a stream: a mergeable summary of its most recent samples."""

from __future__ import annotations

from typing import Any


class Tumbling:
    """The 'current' mergeable window: the last completed block of ``size`` samples plus the block in
    progress. Only the samples that end up in those two blocks are summarised, so a 100k batch costs
    at most two blocks of sketch work.

    An empty block is ``None`` until a value reaches it (read as a fresh ``make()``): a stream that
    has not completed a block yet -- most of a young sidecar's -- holds no empty summaries (~300 bytes
    each with their moments and sketch stores)."""

    __slots__ = ("cur", "fill", "make", "prev", "size")

    def __init__(self, size: int, make: Any) -> None:
        self.size = size
        self.make = make
        self.prev: Any = None
        self.cur: Any = None
        self.fill = 0

    def _cur(self) -> Any:
        if self.cur is None:
            self.cur = self.make()
        return self.cur

    def reads(self, n: int) -> int:
        """How many trailing values of an ``n``-value batch ``update`` summarises: the caller converts
        only those (a 1M batch costs two blocks of conversion, not a million)."""
        return min(n, self.size + (self.fill + n) % self.size)

    def update(self, x: Any, n: int | None = None) -> None:
        """Add a batch of ``n`` values (default ``len(x)``) of which ``x`` holds at least the last
        ``reads(n)``."""
        n = len(x) if n is None else n
        skip = n - len(x)  # values of the batch not passed (none of them is summarised)
        if self.fill + n < self.size:
            self._cur().update(x)
            self.fill += n
            return
        end_fill = (self.fill + n) % self.size
        head = n - end_fill  # samples up to the last completed block boundary
        if head >= self.size:  # the whole last completed block is inside this batch
            self.prev = self.make()
            self.prev.update(x[head - self.size - skip : head - skip])
        else:
            self._cur().update(x[: head - skip])
            self.prev = self.cur
        self.cur = self.make()
        self.cur.update(x[head - skip :])
        self.fill = end_fill

    def _or_empty(self, block: Any) -> Any:
        return self.make() if block is None else block

    def merged(self) -> Any:
        return self._or_empty(self.prev).merge(self._or_empty(self.cur))

    def to_dict(self) -> dict[str, Any]:
        prev, cur = self._or_empty(self.prev), self._or_empty(self.cur)
        return {"size": self.size, "fill": self.fill, "prev": prev.to_dict(), "cur": cur.to_dict()}

    def load(self, d: dict[str, Any], cls: Any) -> None:
        self.size, self.fill = int(d["size"]), int(d["fill"])
        self.prev, self.cur = cls.from_dict(d["prev"]), cls.from_dict(d["cur"])
