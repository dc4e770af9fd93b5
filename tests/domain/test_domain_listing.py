"""``select_listing`` over a ``Listing`` gives exactly ``select``'s pages: every sort spec,
visibility, filter and marker, also after incremental puts/removes."""
from __future__ import annotations

import random

import pytest
from domain_support import ADMIN, ALICE, BOB, NOBODY, make_record
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_glance.domain.listing import Listing
from cas_glance.domain.query import parse_list_query, select, select_listing
from cas_glance.errors import BadRequest

CONTEXTS = [ADMIN, ALICE, BOB, NOBODY]


def world(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        stamp = f"2026-01-01T00:00:{rnd.randrange(6):02d}Z"
        owner = rnd.choice(["alice", "bob", "carol"])
        rec = make_record({"name": rnd.choice([None, "a", "b", "c"]),
                           "visibility": rnd.choice(["public", "private", "shared", "community"])},
                          created_at=stamp, updated_at=stamp, owner=owner,
                          status=rnd.choice(["active", "active", "queued", "killed", "deleted"]),
                          size=rnd.choice([None, 1, 2, 3]), os_hidden=rnd.random() < 0.2,
                          disk_format=rnd.choice([None, "raw", "qcow2"]))
        if rec["visibility"] == "shared":
            rec["members"] = {rnd.choice(["alice", "bob"]): rnd.choice(["accepted", "pending"])}
        out.append(rec)
    return out


SORTS = [[], [("sort_dir", "asc")], [("sort_key", "name"), ("sort_dir", "asc")],
         [("sort", "size:desc,name:asc")], [("sort_key", "id")], [("sort", "created_at:asc,id:desc")],
         [("sort_key", "created_at"), ("sort_dir", "desc")]]
FILTERS = [[], [("os_hidden", "true")], [("visibility", "all")], [("visibility", "community")],
           [("member_status", "all"), ("visibility", "shared")], [("name", "a")],
           [("status", "in:active,queued"), ("disk_format", "raw")]]


def both(recs, listing, params, ctx):
    q = parse_list_query(params)
    try:
        expected = select(recs, q, ctx)
    except BadRequest:
        with pytest.raises(BadRequest):
            select_listing(listing, q, ctx)
        return None
    got = select_listing(listing, q, ctx)
    assert [r["id"] for r in got[0]] == [r["id"] for r in expected[0]]
    assert got[1] == expected[1]
    return got


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 40), st.integers(0, 10**6), st.integers(0, 12), st.sampled_from(SORTS),
       st.sampled_from(FILTERS), st.sampled_from(CONTEXTS))
def test_listing_pages_equal_select(n, seed, limit, sort, filters, ctx):
    recs = world(n, seed)
    rnd = random.Random(seed)
    # build incrementally, with replacements and removals, to exercise put/remove
    listing = Listing(recs[: n // 2])
    for spec in SORTS:  # build every kept order now, so the writes below must maintain them
        select_listing(listing, parse_list_query(spec), ADMIN)
    for rec in recs[n // 2:]:
        listing.put(dict(rec, name="tmp"))
        listing.put(rec)
    for rec in rnd.sample(recs, min(3, n)):
        listing.remove(rec["id"])
        listing.put(dict(rec, size=7, name=None))
        listing.put(rec)
    listing.remove("never-there")
    params = [*sort, *filters, ("limit", str(limit))]
    walked = []
    marker = None
    for _ in range(n + 2):
        extra = [("marker", marker)] if marker else []
        got = both(recs, listing, params + extra, ctx)
        if got is None or got[1] is None:
            break
        walked += got[0]
        marker = got[1]
    # arbitrary markers too (invisible, deleted, unknown: BadRequest on both paths)
    for rec in rnd.sample(recs, min(4, n)):
        both(recs, listing, params + [("marker", rec["id"])], ctx)
    both(recs, listing, params + [("marker", "nope")], ctx)


def test_removed_records_disappear_and_memo_is_dropped_on_replace():
    recs = world(10, 3)
    listing = Listing(recs)
    first = recs[0]
    assert listing.memo(first, lambda r: r["id"] + "!") == first["id"] + "!"
    assert listing.memo(first, lambda r: "other") == first["id"] + "!"
    listing.put(dict(first))
    assert listing.memo(listing.by_id[first["id"]], lambda r: "new") == "new"
    listing.remove(first["id"])
    assert first["id"] not in listing.by_id and len(listing) == 9
    page, _ = select_listing(listing, parse_list_query([("visibility", "all"),
                                                         ("limit", "100")]), ADMIN)
    assert first["id"] not in [r["id"] for r in page]
