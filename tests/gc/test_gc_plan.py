"""plan_gc is pure: the same snapshot, clock and grace always give the same plan."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cas_glance.gc import ChunkRow, GcSnapshot, PendingRow, plan_gc

D = [f"{i:064x}" for i in range(8)]


def row(i: int, refcount: int = 0, zero_since: float = 0.0, state: str = "live", stored: int = 100) -> ChunkRow:
    return ChunkRow(D[i], refcount, stored, state, zero_since)


def test_only_zero_ref_live_chunks_older_than_grace_are_collected() -> None:
    snap = GcSnapshot(chunks=(row(0, zero_since=100), row(1, zero_since=950), row(2, refcount=3),
                              row(3, zero_since=900)))
    plan = plan_gc(snap, now=1000, grace=100)
    assert [c.digest for c in plan.collect] == [D[0], D[3]]  # 900 <= 1000 - 100: exactly at grace
    assert plan.older_than == 900


def test_grace_zero_collects_every_zero_ref_chunk() -> None:
    snap = GcSnapshot(chunks=(row(0, zero_since=1000), row(1, refcount=1)))
    assert [c.digest for c in plan_gc(snap, now=1000, grace=0).collect] == [D[0]]


def test_dying_entries_are_resumed_whatever_their_age() -> None:
    snap = GcSnapshot(chunks=(row(0, zero_since=999, state="dying"), row(1, zero_since=0, state="dying")))
    plan = plan_gc(snap, now=1000, grace=3600)
    assert plan.collect == ()
    assert [c.digest for c in plan.resume] == [D[0], D[1]]


def test_pending_delete_images_past_scrub_time_are_purged() -> None:
    snap = GcSnapshot(pending=(PendingRow("a", 100), PendingRow("b", 990), PendingRow("c", 940)))
    assert plan_gc(snap, now=1000, grace=0, scrub_time=60).purge == ("a", "c")
    assert plan_gc(snap, now=1000, grace=0).purge == ("a", "b", "c")


def test_plan_counts_chunks_and_bytes_of_collect_and_resume() -> None:
    snap = GcSnapshot(chunks=(row(0, stored=10), row(1, stored=20, state="dying"), row(2, refcount=1, stored=40)))
    plan = plan_gc(snap, now=10, grace=0)
    assert (plan.chunks, plan.bytes) == (2, 30)


rows = st.builds(ChunkRow, st.sampled_from(D), st.integers(0, 3), st.integers(0, 10**6),
                 st.sampled_from(["live", "dying"]), st.floats(0, 2000))


@given(st.lists(rows, max_size=20), st.floats(0, 2000), st.floats(0, 1000))
def test_plan_never_collects_a_referenced_or_young_chunk(chunks: list[ChunkRow], now: float, grace: float) -> None:
    snap = GcSnapshot(chunks=tuple(chunks))
    plan = plan_gc(snap, now, grace)
    assert plan == plan_gc(snap, now, grace)  # pure
    for c in plan.collect:
        assert c.refcount == 0 and c.state == "live" and c.zero_since <= now - grace
    assert all(c.state == "dying" for c in plan.resume)
    assert set(plan.collect) | set(plan.resume) >= {
        c for c in chunks if c.refcount == 0 and c.state == "live" and c.zero_since <= now - grace}
