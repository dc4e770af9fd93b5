"""Pre-ordered records for GET /v2/images: pick a page by walking an order kept ready instead
of filtering and sorting every record per request.

``Listing`` holds a set of records (keyed by id) and, maintained incrementally on every
``put``/``remove``, the default order (``created_at``, ``id``; walked backwards for Glance's
default ``desc``, forwards for ``asc``). Any other sort spec gets its full order built once per
write generation (``full_order``) and cached. ``select`` starts at the marker's position and
walks, applying the list rules and filters lazily, until ``limit`` records matched: a page
costs O(limit + skipped) instead of O(N log limit).

Invariants: the result equals ``query.select`` over the same records (same rules, same total
order, same ``next``); the structure is plain data, no I/O and no locking: the owner (the
index's record cache) serialises ``put``/``remove`` against ``select``/``memo``.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from typing import Any

from cas_glance.domain.sorting import Sort, full_order
from cas_glance.domain.types import Record

DEFAULT_ASC: Sort = (("created_at", "asc"), ("id", "asc"))
DEFAULT_DESC: Sort = (("created_at", "desc"), ("id", "desc"))
MAX_CACHED_ORDERS = 16


def _key(record: Record) -> tuple[str, str]:
    # records from new_image always carry created_at; the index also holds bare test records
    return (record.get("created_at") or "", record["id"])


class Listing:
    """Records by id, the default order, and per-generation orders for other sort specs."""

    def __init__(self, records: list[Record] | None = None) -> None:
        self.by_id: dict[str, Record] = {}
        for record in records or ():
            self.by_id[record["id"]] = record
        ordered = sorted(self.by_id.values(), key=_key)
        self._keys: list[tuple[str, str]] = [_key(r) for r in ordered]
        self._recs: list[Record] = ordered
        self.generation = 0
        self._orders: dict[Sort, tuple[int, list[Record], dict[str, int]]] = {}
        self._memo: dict[str, tuple[Record, Any]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def records(self) -> list[Record]:
        """Every record, in no particular order."""
        return list(self.by_id.values())

    # -- writes -------------------------------------------------------------------------
    def put(self, record: Record) -> None:
        """Insert ``record`` or replace the record with its id."""
        old = self.by_id.get(record["id"])
        if old is not None:
            self._drop(old)
        self.by_id[record["id"]] = record
        key = _key(record)
        insort(self._keys, key)
        self._recs.insert(bisect_left(self._keys, key), record)
        self.generation += 1

    def remove(self, image_id: str) -> None:
        old = self.by_id.pop(image_id, None)
        if old is not None:
            self._drop(old)
            self.generation += 1

    def _drop(self, old: Record) -> None:
        at = bisect_left(self._keys, _key(old))
        del self._keys[at]
        del self._recs[at]
        self._memo.pop(old["id"], None)

    # -- reads --------------------------------------------------------------------------
    def memo(self, record: Record, fn: Callable[[Record], Any]) -> Any:
        """``fn(record)``, remembered until the record is replaced or removed (``fn`` must be
        pure and its result treated as immutable)."""
        hit = self._memo.get(record["id"])
        if hit is not None and hit[0] is record:
            return hit[1]
        value = fn(record)
        if self.by_id.get(record["id"]) is record:
            self._memo[record["id"]] = (record, value)
        return value

    def after(self, sort: Sort, marker: Record | None) -> Iterator[Record]:
        """Every record strictly after ``marker`` (from the start without one) in ``sort``
        order; ``marker`` must be one of the records."""
        if sort == DEFAULT_DESC or sort == DEFAULT_ASC:
            keys, recs = self._keys, self._recs
            if sort == DEFAULT_DESC:
                start = len(recs) - 1 if marker is None else bisect_left(keys, _key(marker)) - 1
                return (recs[i] for i in range(start, -1, -1))
            start = 0 if marker is None else bisect_left(keys, _key(marker)) + 1
            return (recs[i] for i in range(start, len(recs)))
        ordered, pos = self._order(sort)
        start = 0 if marker is None else pos[marker["id"]] + 1
        return (ordered[i] for i in range(start, len(ordered)))

    def _order(self, sort: Sort) -> tuple[list[Record], dict[str, int]]:
        cached = self._orders.get(sort)
        if cached is not None and cached[0] == self.generation:
            return cached[1], cached[2]
        ordered = full_order(self._recs, sort) if self._recs else []
        pos = {r["id"]: i for i, r in enumerate(ordered)}
        self._orders.pop(sort, None)
        if len(self._orders) >= MAX_CACHED_ORDERS:
            self._orders.pop(next(iter(self._orders)))
        self._orders[sort] = (self.generation, ordered, pos)
        return ordered, pos
