"""Selecting a page: list visibility, never-listed statuses, sort orders with ties, markers,
and ``next`` on every full page."""
from __future__ import annotations

import random

import pytest
from domain_support import ADMIN, ALICE, BOB, NOBODY, make_record, records
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_glance.domain.query import parse_list_query, select
from cas_glance.errors import BadRequest


def ids(recs):
    return [r["id"] for r in recs]


def run(recs, ctx=ADMIN, **params):
    pairs = []
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((key, str(v)))
    return select(recs, parse_list_query(pairs), ctx)


def walk(recs, ctx=ADMIN, **params):
    """Follow markers to the end; returns the pages."""
    pages, marker = [], None
    while True:
        extra = {"marker": marker} if marker else {}
        page, marker = run(recs, ctx, **params, **extra)
        pages.append(page)
        if marker is None:
            return pages


def reference(recs, sort):
    """Independent oracle: stable multi-pass sort, NULL first when ascending."""
    out = list(recs)
    for key, direction in reversed(sort):
        out.sort(key=lambda r: (r[key] is not None, r[key]), reverse=direction == "desc")
    return out


def test_default_order_is_newest_first():
    recs = records(5)
    page, nxt = run(recs)
    assert ids(page) == ids(reversed(recs)) and nxt is None


def test_next_marker_whenever_page_is_full_and_last_page_may_be_empty():
    recs = records(4)
    pages = walk(recs, limit=2)
    assert [len(p) for p in pages] == [2, 2, 0]
    assert ids(pages[0] + pages[1]) == ids(reversed(recs))


def test_partial_last_page_has_no_next():
    pages = walk(records(5), limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]


def test_limit_zero_gives_empty_page_without_next():
    assert run(records(3), limit=0) == ([], None)


def test_empty_listing():
    assert run([]) == ([], None)


def test_unknown_marker_is_bad_request():
    with pytest.raises(BadRequest):
        run(records(3), marker="00000000-0000-0000-0000-000000000000")


def test_marker_of_invisible_or_deleted_image_is_bad_request():
    private = make_record({"visibility": "private"}, owner="bob")
    gone = make_record(status="deleted")
    with pytest.raises(BadRequest):
        run([private], ALICE, marker=private["id"])
    with pytest.raises(BadRequest):
        run([gone], ADMIN, marker=gone["id"])


def test_marker_filtered_out_by_other_filters_still_positions_the_page():
    recs = records(6)
    named = [dict(r, name="n") if i != 2 else dict(r, name="other") for i, r in enumerate(recs)]
    page, _ = run(named, name="n", marker=named[2]["id"], sort="created_at:asc")
    assert ids(page) == ids(named[3:])


@pytest.mark.parametrize("status", ["deleted", "pending_delete", "killed"])
def test_gone_and_killed_images_are_never_listed(status):
    recs = records(2) + [make_record(status=status)]
    for params in ({}, {"status": status}, {"visibility": "all"}):
        page, _ = run(recs, **params)
        assert all(r["status"] != status for r in page)


def test_hidden_images_only_with_os_hidden_true():
    shown, hidden = make_record(), make_record({"os_hidden": True})
    assert ids(run([shown, hidden])[0]) == [shown["id"]]
    assert ids(run([shown, hidden], os_hidden="True")[0]) == [hidden["id"]]
    assert ids(run([shown, hidden], os_hidden="false")[0]) == [shown["id"]]


SORTS = [
    [("name", "asc")], [("name", "desc")], [("size", "asc")], [("size", "desc")],
    [("status", "asc")], [("disk_format", "asc"), ("name", "desc")],
    [("container_format", "desc"), ("size", "asc")], [("updated_at", "asc")],
    [("id", "asc")], [("created_at", "asc")], [("name", "asc"), ("size", "desc")],
]


def tied_records(n=40, seed=7):
    """Records with many ties and NULLs in every sortable field (and in created_at)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        stamp = f"2026-01-01T00:00:{rnd.randrange(5):02d}Z"
        out.append(make_record(
            created_at=stamp, updated_at=f"2026-01-01T00:00:{rnd.randrange(3):02d}Z",
            name=rnd.choice([None, "a", "b", "c"]), size=rnd.choice([None, 0, 5, 10]),
            status=rnd.choice(["active", "queued"]),
            disk_format=rnd.choice([None, "raw", "qcow2"]),
            container_format=rnd.choice([None, "bare", "ovf"])))
    return out


@pytest.mark.parametrize("sort", SORTS, ids=lambda s: ",".join(f"{k}:{d}" for k, d in s))
@pytest.mark.parametrize("limit", [1, 3, 7, 40, 100])
def test_sort_orders_with_ties_page_like_the_oracle(sort, limit):
    recs = tied_records()
    q = parse_list_query([("sort", ",".join(f"{k}:{d}" for k, d in sort))])
    expected = ids(reference(recs, q.sort))
    pages = walk(recs, sort=",".join(f"{k}:{d}" for k, d in sort), limit=limit)
    assert ids([r for p in pages for r in p]) == expected


def test_classic_sort_key_with_ties_breaks_on_created_at_then_id():
    recs = tied_records()
    page, _ = run(recs, sort_key="name", sort_dir="asc", limit=100)
    q = parse_list_query([("sort_key", "name"), ("sort_dir", "asc")])
    assert q.sort == (("name", "asc"), ("created_at", "asc"), ("id", "asc"))
    assert ids(page) == ids(reference(recs, q.sort))


def test_nulls_sort_first_ascending_and_last_descending():
    named, unnamed = make_record({"name": "x"}), make_record()
    assert ids(run([named, unnamed], sort="name:asc")[0]) == [unnamed["id"], named["id"]]
    assert ids(run([named, unnamed], sort="name:desc")[0]) == [named["id"], unnamed["id"]]


def test_large_listing_pages_match_the_oracle_in_every_path():
    rnd = random.Random(3)
    recs = [make_record(created_at=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                        name=rnd.choice([None, *"abcdefghij"]), size=rnd.choice([None, 1, 2]))
            for i in range(3000)]
    rnd.shuffle(recs)
    for sort in ("created_at:desc", "name:asc", "name:asc,size:desc", "size:desc"):
        q = parse_list_query([("sort", sort)])
        expected = ids(reference(recs, q.sort))
        got = []
        marker = None
        for _ in range(4):
            params = [("sort", sort), ("limit", "20")] + ([("marker", marker)] if marker else [])
            page, marker = select(recs, parse_list_query(params), ADMIN)
            got += ids(page)
        assert got == expected[:80]
        page, _ = select(recs, parse_list_query([("sort", sort), ("limit", "1000")]), ADMIN)
        assert ids(page) == expected[:1000]


# ---- list visibility ------------------------------------------------------------------------

def world():
    """One image of each kind, owned by alice unless stated."""
    return {
        "public": make_record({"visibility": "public"}, owner="alice"),
        "private": make_record({"visibility": "private"}, owner="alice"),
        "shared": make_record({"visibility": "shared"}, owner="alice"),
        "community": make_record({"visibility": "community"}, owner="alice"),
        "bob_private": make_record({"visibility": "private"}, owner="bob"),
        "bob_community": make_record({"visibility": "community"}, owner="bob"),
        "shared_accepted": make_record({"visibility": "shared"}, owner="carol",
                                       members={"bob": "accepted"}),
        "shared_pending": make_record({"visibility": "shared"}, owner="carol",
                                      members={"bob": "pending"}),
        "shared_rejected": make_record({"visibility": "shared"}, owner="carol",
                                       members={"bob": "rejected"}),
        "shared_other": make_record({"visibility": "shared"}, owner="carol"),
    }


def names(ctx, **params):
    w = world()
    by_id = {r["id"]: name for name, r in w.items()}
    page, _ = run(list(w.values()), ctx, limit=100, **params)
    return {by_id[r["id"]] for r in page}


ALL = set(world())


def test_admin_without_project_lists_all_but_community():
    assert names(ADMIN) == ALL - {"community", "bob_community"}


def test_admin_with_visibility_filters():
    assert names(ADMIN, visibility="all") == ALL
    assert names(ADMIN, visibility="community") == {"community", "bob_community"}
    assert names(ADMIN, visibility="private") == {"private", "bob_private"}


def test_owner_lists_own_images_including_own_community():
    assert names(ALICE) == {"public", "private", "shared", "community"}


def test_member_lists_public_own_and_accepted_shares():
    assert names(BOB) == {"public", "bob_private", "bob_community", "shared_accepted"}


@pytest.mark.parametrize("status,expected", [
    ("pending", {"shared_pending"}), ("rejected", {"shared_rejected"}),
    ("all", {"shared_accepted", "shared_pending", "shared_rejected"}),
])
def test_member_status_selects_shares(status, expected):
    assert names(BOB, member_status=status) == {"public", "bob_private", "bob_community"} | expected


def test_community_listing_shows_everyones_community_images():
    assert names(BOB, visibility="community") == {"community", "bob_community"}


def test_visibility_shared_lists_own_and_member_shares():
    assert names(BOB, visibility="shared") == {"shared_accepted"}
    assert names(ALICE, visibility="shared") == {"shared"}


def test_visibility_private_lists_only_own_private():
    assert names(BOB, visibility="private") == {"bob_private"}


def test_visibility_all_for_non_admin():
    assert names(BOB, visibility="all") == {"public", "community", "bob_private",
                                            "bob_community", "shared_accepted"}


def test_project_less_non_admin_lists_public_only():
    assert names(NOBODY) == {"public"}
    assert names(NOBODY, visibility="community") == {"community", "bob_community"}


def test_filters_combine_with_visibility():
    assert names(BOB, visibility="public", name="nothing") == set()


def test_marker_filtered_out_in_ranked_path():
    recs = tied_records()
    marker = recs[5]
    tagged = [dict(r, tags=["t"]) if r is not marker else r for r in recs]
    sort = "name:asc,size:desc"
    expected = ids(r for r in reference(tagged, parse_list_query([("sort", sort)]).sort))
    after = [i for i in expected[expected.index(marker["id"]) + 1:] if i != marker["id"]]
    page, _ = run(tagged, tag="t", sort=sort, marker=marker["id"], limit=100)
    assert ids(page) == after


# ---- property: walking every page yields the oracle order exactly once --------------------

sort_specs = st.lists(
    st.tuples(st.sampled_from(["name", "size", "status", "disk_format", "created_at", "id",
                               "updated_at", "container_format"]),
              st.sampled_from(["asc", "desc"])),
    min_size=1, max_size=3, unique_by=lambda kd: kd[0])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(1, 25), sort_specs, st.integers(0, 10**6))
def test_paging_walk_matches_oracle(n, limit, spec, seed):
    recs = tied_records(n, seed)
    sort = ",".join(f"{k}:{d}" for k, d in spec)
    expected = ids(reference(recs, parse_list_query([("sort", sort)]).sort))
    pages = walk(recs, sort=sort, limit=limit)
    assert ids([r for p in pages for r in p]) == expected
    sizes = [len(p) for p in pages]
    assert all(size == limit for size in sizes[:-1]) and sizes[-1] < limit
