"""Ordering and paging of already-filtered records: one page after an optional marker.

Invariants: the sort spec always ends in ``created_at`` and ``id`` (ids are unique), so the
order is total and a marker position is unambiguous; NULL sorts before every value when
ascending (MySQL's rule, which Glance inherits).

Performance (10,000 records must page in a few ms). The default order (a never-NULL primary
field, one direction) reads only the primary field of every record, takes the page's
threshold with a heap and sorts the few candidates at or above it by the full key. Otherwise
(nullable primary, mixed directions, or too many ties) the primary field becomes integer ranks
(reversed for desc) that select the candidates the same way, and the candidates are ordered by
all fields' ranks folded into one int each, so the final sort compares plain ints.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from cas_glance.domain.types import Record

Key = Callable[[Record], Any]
Sort = tuple[tuple[str, str], ...]

#: Fields every record carries with a non-NULL value.
NON_NULL = frozenset({"id", "status", "created_at", "updated_at"})


def _null_first(value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


def field_key(name: str) -> Key:
    """Key for one field: the raw value when never NULL, else ``(is_set, value)``."""
    if name in NON_NULL:
        return itemgetter(name)
    return lambda r: _null_first(r.get(name))


def full_key(names: tuple[str, ...]) -> Key:
    """Key tuple over several fields, in order."""
    if all(n in NON_NULL for n in names):
        if len(names) > 1:
            return itemgetter(*names)
        only = names[0]
        return lambda r: (r[only],)
    getters = [field_key(n) for n in names]
    return lambda r: tuple([g(r) for g in getters])


def page(matching: list[Record], sort: Sort, limit: int, marker: Record | None) -> list[Record]:
    """The ``limit`` records that follow ``marker`` (or come first) in ``sort`` order.
    ``marker`` need not be among ``matching`` (it may have been filtered out)."""
    if limit <= 0 or not matching:
        return []
    directions = {d for _, d in sort}
    if len(directions) == 1 and sort[0][0] in NON_NULL:
        found = _page_threshold(matching, sort, limit, marker, "desc" in directions)
        if found is not None:
            return found
    return _page_ranked(matching, sort, limit, marker)


def _page_threshold(matching: list[Record], sort: Sort, limit: int, marker: Record | None,
                    desc: bool) -> list[Record] | None:
    """Uniform direction: heap threshold on the primary field; None if too many candidates."""
    names = tuple(k for k, _ in sort)
    key, primary = full_key(names), field_key(names[0])
    values = list(map(primary, matching))
    if marker is not None:
        matching, values = _after_marker(matching, values, key, primary, marker, desc)
    if limit * 8 < len(matching):
        threshold = (heapq.nlargest if desc else heapq.nsmallest)(limit, values)[-1]
        matching = [r for r, v in zip(matching, values)
                    if (v >= threshold if desc else v <= threshold)]
    if len(matching) > 8 * limit + 256:
        return None
    return sorted(matching, key=key, reverse=desc)[:limit]


def _after_marker(matching: list[Record], values: list[Any], key: Key, primary: Key, marker: Record,
                  desc: bool) -> tuple[list[Record], list[Any]]:
    """Keep the records strictly after ``marker``; full keys only on primary-field ties."""
    mp, mk = primary(marker), key(marker)
    if desc:
        keep = [i for i, v in enumerate(values)
                if v < mp or (v == mp and key(matching[i]) < mk)]
    else:
        keep = [i for i, v in enumerate(values)
                if v > mp or (v == mp and key(matching[i]) > mk)]
    return [matching[i] for i in keep], [values[i] for i in keep]


def _ranks(pool: list[Record], name: str, desc: bool) -> tuple[list[int], int]:
    """Each record's rank for one field (0 = first in the requested direction), and the
    number of distinct values."""
    if name in NON_NULL:
        values = list(map(itemgetter(name), pool))
        distinct = sorted(set(values))
    else:
        values = [r.get(name) for r in pool]
        distinct = sorted(set(values), key=_null_first)
    if desc:
        distinct.reverse()
    rank = {v: i for i, v in enumerate(distinct)}
    return list(map(rank.__getitem__, values)), len(distinct)


def _page_ranked(matching: list[Record], sort: Sort, limit: int,
                 marker: Record | None) -> list[Record]:
    """Any directions: narrow to the candidates whose primary rank can reach the page, then
    order those fully by folded ranks."""
    pool = matching
    if marker is not None and not any(r is marker for r in matching):
        pool = [*matching, marker]
    name, direction = sort[0]
    primary, _ = _ranks(pool, name, direction == "desc")
    idx: list[int] = list(range(len(pool)))
    ties = 0
    if marker is not None:
        at = next(i for i, r in enumerate(pool) if r is marker)
        low = primary[at]
        idx = [i for i in idx if primary[i] >= low]
        ties = sum(1 for i in idx if primary[i] == low)
    need = limit + ties
    if need * 8 < len(idx):
        threshold = heapq.nsmallest(need, [primary[i] for i in idx])[-1]
        idx = [i for i in idx if primary[i] <= threshold]
    ordered = full_order([pool[i] for i in idx], sort)
    if marker is not None:
        ordered = ordered[next(i for i, r in enumerate(ordered) if r is marker) + 1:]
    return ordered[:limit]


def full_order(records: list[Record], sort: Sort) -> list[Record]:
    """``records`` in ``sort`` order: per-field ranks folded into one int each, one int sort."""
    combined = [0] * len(records)
    for name, direction in sort:
        ranks, width = _ranks(records, name, direction == "desc")
        combined = [c * width + x for c, x in zip(combined, ranks)]
        if len(set(combined)) == len(records):
            break  # already a total order: later fields cannot change it
    return [records[i] for i in sorted(range(len(records)), key=combined.__getitem__)]
