"""select() over 10,000 image records: one list page must cost a few milliseconds.

Run:  .venv/bin/pytest bench/test_query.py --benchmark-enable -s
Without --benchmark-enable (the default) each case runs once as a smoke test.

The records are built the way the index cache holds them (loaded in id order, so list order
matches allocation order); every case checks its page against an independent oracle (a
stable multi-pass sort; membership is decided by select() on one record at a time, so the
ordering, paging and marker logic are checked independently), so a fast wrong answer cannot
pass.
"""
from __future__ import annotations

import copy
import random
import uuid
from typing import Any

import pytest

from cas_glance.domain.context import RequestContext
from cas_glance.domain.image import new_image
from cas_glance.domain.listing import Listing
from cas_glance.domain.query import parse_list_query, select, select_listing

N = 10_000
ADMIN = RequestContext.admin()
MEMBER = RequestContext(project_id="p3", user_id="u", roles=("member",), is_admin=False)


def build_records(n: int = N, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        body = {"name": f"img-{rnd.randrange(500)}", "disk_format": rnd.choice(["raw", "qcow2"]),
                "container_format": "bare", "os_distro": rnd.choice(["ubuntu", "fedora"]),
                "visibility": rnd.choice(["public", "private", "shared", "community"]),
                "owner": f"p{rnd.randrange(10)}", "tags": rnd.sample(["a", "b", "c", "d"], 2)}
        day, hour, minute, second = 1 + i // 86400, i // 3600 % 24, i // 60 % 60, i % 60
        stamp = f"2026-01-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
        rec = new_image(body, ADMIN, stamp, str(uuid.UUID(int=rnd.getrandbits(128), version=4)))
        rec.update(status=rnd.choice(["active"] * 8 + ["queued", "deleted"]),
                   size=rnd.choice([None, rnd.randrange(1 << 30)]))
        if rec["visibility"] == "shared":
            rec["members"] = {"p3": rnd.choice(["accepted", "pending"])}
        out.append(rec)
    out.sort(key=lambda r: r["id"])
    return [copy.deepcopy(r) for r in out]


RECORDS = build_records()


def oracle(params: list[tuple[str, str]], ctx: RequestContext) -> list[str]:
    """All matching ids in order, by the slow obvious route."""
    kept = [p for p in params if p[0] not in ("limit", "marker")]
    q = parse_list_query([*kept, ("limit", "1000")])
    matching = [r for r in RECORDS if _listed(r, q, ctx)]
    for key, direction in reversed(q.sort):
        matching.sort(key=lambda r: (r[key] is not None, r[key]), reverse=direction == "desc")
    return [r["id"] for r in matching]


def _listed(r: dict, q: Any, ctx: RequestContext) -> bool:
    page, _ = select([r], q, ctx)
    return bool(page)


CASES = {
    "default": [],
    "glanceclient-name-asc": [("sort_key", "name"), ("sort_dir", "asc")],
    "filtered": [("status", "active"), ("os_distro", "ubuntu"), ("tag", "a")],
    "mixed-dirs": [("sort", "name:asc,size:desc")],
}


@pytest.mark.parametrize("limit", [20, 1000])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("who", ["admin", "member"])
def test_select_page(benchmark: Any, case: str, limit: int, who: str) -> None:
    _bench_first_page(benchmark, select, RECORDS, case, limit, who)


def _bench_first_page(benchmark: Any, pick: Any, source: Any, case: str, limit: int, who: str) -> None:
    """Time the first page of `case` for `who` and check it (and its marker) against the oracle."""
    ctx = ADMIN if who == "admin" else MEMBER
    params = CASES[case] + [("limit", str(limit))]
    page, marker = benchmark(pick, source, parse_list_query(params), ctx)
    assert [r["id"] for r in page] == oracle(params, ctx)[:limit]
    assert marker == (page[-1]["id"] if len(page) == limit else None)


LISTING = Listing(RECORDS)


@pytest.mark.parametrize("limit", [20, 1000])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("who", ["admin", "member"])
def test_select_listing_page(benchmark: Any, case: str, limit: int, who: str) -> None:
    """The server's path: the index cache's kept orders (other sort specs: built on first use,
    so warm here), walked from the start."""
    _bench_first_page(benchmark, select_listing, LISTING, case, limit, who)


def _bench_second_page(benchmark: Any, pick: Any, source: Any, params: list[tuple[str, str]],
                       limit: int) -> None:
    """Time the page after the first (marker = the first page's last id) and check both pages
    against the oracle."""
    first, marker = pick(source, parse_list_query(params), ADMIN)
    page, _ = benchmark(pick, source, parse_list_query(params + [("marker", marker)]), ADMIN)
    assert [r["id"] for r in first + page] == oracle(params, ADMIN)[: 2 * limit]


@pytest.mark.parametrize("limit", [20, 1000])
@pytest.mark.parametrize("sort", ["default", "name-asc"])
def test_select_listing_second_page_by_marker(benchmark: Any, limit: int, sort: str) -> None:
    params = [("limit", str(limit))]
    if sort == "name-asc":
        params += [("sort_key", "name"), ("sort_dir", "asc")]
    _bench_second_page(benchmark, select_listing, LISTING, params, limit)


def test_listing_order_rebuild_after_a_write(benchmark: Any) -> None:
    """A write, then a page in a non-default order: the kept order is maintained by the write
    (bisect + insert), never rebuilt."""
    listing = Listing(RECORDS)
    q = parse_list_query([("sort_key", "name"), ("sort_dir", "asc"), ("limit", "200")])

    def write_then_page() -> Any:
        listing.put(dict(RECORDS[0]))
        return select_listing(listing, q, ADMIN)
    page, _ = benchmark(write_then_page)
    assert [r["id"] for r in page] == oracle([("sort_key", "name"), ("sort_dir", "asc")], ADMIN)[:200]


def test_select_glanceclient_image_list_page(benchmark: Any) -> None:
    """What ``glance image-list`` asks for: limit=200&sort_key=name&sort_dir=asc."""
    params = [("limit", "200"), ("sort_key", "name"), ("sort_dir", "asc")]
    page, marker = benchmark(select, RECORDS, parse_list_query(params), ADMIN)
    assert [r["id"] for r in page] == oracle(params, ADMIN)[:200] and marker == page[-1]["id"]


@pytest.mark.parametrize("limit", [20, 1000])
def test_select_second_page_by_marker(benchmark: Any, limit: int) -> None:
    params = [("sort_key", "name"), ("sort_dir", "asc"), ("limit", str(limit))]
    _bench_second_page(benchmark, select, RECORDS, params, limit)


def test_parse_is_cheap(benchmark: Any) -> None:
    params = [("limit", "20"), ("sort", "name:asc,size:desc"), ("status", "in:active,queued"),
              ("created_at", "gt:2026-01-01T00:00:00Z"), ("tag", "a"), ("tag", "b")]
    q = benchmark(parse_list_query, params)
    assert q.limit == 20 and len(q.predicates) == 3
