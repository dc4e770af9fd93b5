"""Pre-ordered records for GET /v2/images: pick a page by walking an order kept ready instead
of filtering and sorting every record per request.

``Listing`` holds a set of records (keyed by id) and orders over them, each a sorted list of
records beside their sort keys, maintained incrementally (bisect + list insert/delete) on every
``put``/``remove``: always the default order (``created_at``, ``id``; walked backwards for
Glance's default ``desc``, forwards for ``asc``), and for any other sort spec, once asked for, an
order built by ``sorting.full_order`` (the least recently used goes beyond
``MAX_CACHED_ORDERS``). ``query.select_listing`` starts at the marker's position (bisect on its
key) and walks, applying the list rules and filters lazily, until ``limit`` records matched: a
page costs O(log N + limit + skipped) instead of O(N).

Invariants: a page equals ``query.select``'s over the same records (same rules, same total
order, same ``next``); each order's keys ascend strictly (ids are unique and every key ends at
``id``); plain data, no I/O, no locking: the owner (the index's
record cache) serialises ``put``/``remove`` against ``after``/``memo`` and the walks.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from cas_glance.domain.sorting import Sort, field_key, full_order
from cas_glance.domain.types import Record

DEFAULT_ASC: Sort = (("created_at", "asc"), ("id", "asc"))
DEFAULT_DESC: Sort = (("created_at", "desc"), ("id", "desc"))
MAX_CACHED_ORDERS = 8

OrderKey = Callable[[Record], tuple[Any, ...]]


class _Desc:
    """A key component that sorts in the opposite direction (for mixed-direction specs)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    __hash__ = None  # type: ignore[assignment]


def _default_key(record: Record) -> tuple[Any, ...]:
    # records from new_image always carry created_at; the index also holds bare test records
    return (record.get("created_at") or "", record["id"])


def order_key(sort: Sort) -> tuple[OrderKey, bool]:
    """A key whose ascending order, read backwards when the flag is True, is ``sort``'s
    order (the same total order as ``sorting.full_order``: NULL first ascending, last
    descending). Fields after ``id`` cannot matter (ids are unique) and are left out."""
    backward = sort[0][1] == "desc"
    getters: list[Callable[[Record], Any]] = []
    for name, direction in sort:
        getter = field_key(name)
        if (direction == "desc") != backward:
            getter = (lambda g: lambda r: _Desc(g(r)))(getter)
        getters.append(getter)
        if name == "id":
            break
    return (lambda r: tuple([g(r) for g in getters])), backward


class _Order:
    """Records ascending by ``key`` (with the keys alongside, for bisect)."""

    __slots__ = ("backward", "key", "keys", "recs")

    def __init__(self, key: OrderKey, backward: bool, recs: list[Record]) -> None:
        self.key, self.backward, self.recs = key, backward, recs
        self.keys = list(map(key, recs))

    def add(self, record: Record) -> None:
        k = self.key(record)
        at = bisect_left(self.keys, k)
        self.keys.insert(at, k)
        self.recs.insert(at, record)

    def drop(self, record: Record) -> None:
        at = bisect_left(self.keys, self.key(record))
        del self.keys[at]
        del self.recs[at]

    def after(self, marker: Record | None, backward: bool) -> Iterator[Record]:
        recs = self.recs
        if backward:
            start = len(recs) - 1 if marker is None else bisect_left(self.keys, self.key(marker)) - 1
            return (recs[i] for i in range(start, -1, -1))
        start = 0 if marker is None else bisect_left(self.keys, self.key(marker)) + 1
        return (recs[i] for i in range(start, len(recs)))


class Listing:
    """Records by id, the default order, and orders for other sort specs kept once asked for."""

    def __init__(self, records: list[Record] | None = None) -> None:
        self.by_id: dict[str, Record] = {}
        for record in records or ():
            self.by_id[record["id"]] = record
        self._default = _Order(_default_key, False, sorted(self.by_id.values(), key=_default_key))
        self._orders: dict[Sort, _Order] = {}
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
        self._default.add(record)
        for order in self._orders.values():
            order.add(record)

    def remove(self, image_id: str) -> None:
        old = self.by_id.pop(image_id, None)
        if old is not None:
            self._drop(old)

    def _drop(self, old: Record) -> None:
        self._default.drop(old)
        for order in self._orders.values():
            order.drop(old)
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
            return self._default.after(marker, sort == DEFAULT_DESC)
        order = self._order(sort)
        return order.after(marker, order.backward)

    def _order(self, sort: Sort) -> _Order:
        """The kept order for ``sort``: built once (``full_order``), then maintained by every
        put/remove; the least recently used one goes beyond ``MAX_CACHED_ORDERS``."""
        order = self._orders.pop(sort, None)
        if order is None:
            key, backward = order_key(sort)
            recs = full_order(self._default.recs, sort) if self._default.recs else []
            if backward:
                recs.reverse()
            order = _Order(key, backward, recs)
            if len(self._orders) >= MAX_CACHED_ORDERS:
                self._orders.pop(next(iter(self._orders)))
        self._orders[sort] = order
        return order
