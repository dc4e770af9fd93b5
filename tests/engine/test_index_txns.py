"""Index transactions: parameter check, map growth, record cache, pinning and the chunk
state machine (live -> zero refs -> dying -> dropped) the collector builds on."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from cas_glance import blobfmt
from cas_glance.errors import Conflict, Gone, IndexMismatch, NotFound
from cas_glance.index import ChunkRef, Index

PARAMS = {"algorithm": "fastcdc-2020", "min_size": 16384, "avg_size": 65536, "max_size": 262144}


def digests(n: int, salt: str = "") -> list[str]:
    return [blobfmt.digest(f"{salt}{i}".encode()) for i in range(n)]


@pytest.fixture
def index(tmp_path: Path):  # type: ignore[no-untyped-def]
    ix = Index(tmp_path / "ix", chunker_params=PARAMS, sync=False)
    yield ix
    ix.close()


def saving(ix: Index, image_id: str) -> None:
    ix.create_image({"id": image_id, "status": "saving"})


def put_refs(ds: list[str], start: int = 0, length: int = 100) -> list[ChunkRef]:
    return [ChunkRef(start + i * length, d, length, 50, 1, True) for i, d in enumerate(ds)]


def refcounts(ix: Index) -> dict[str, int]:
    return {d: e["refcount"] for d, e in ix.iter_chunks()}


def test_other_chunker_params_are_refused_naming_both(tmp_path: Path) -> None:
    Index(tmp_path / "ix", chunker_params=PARAMS).close()
    other = dict(PARAMS, avg_size=32768)
    with pytest.raises(IndexMismatch) as err:
        Index(tmp_path / "ix", chunker_params=other)
    assert "65536" in str(err.value) and "32768" in str(err.value)


def test_map_grows_past_a_tiny_initial_size(tmp_path: Path) -> None:
    ix = Index(tmp_path / "ix", chunker_params=PARAMS, map_size=64 << 10, sync=False)
    try:
        saving(ix, "big")
        for k in range(20):
            assert ix.pin("big", put_refs(digests(500, str(k)), start=k * 50_000)) == []
        assert len(list(ix.manifest("big"))) == 10_000
        assert ix._env.info()["map_size"] > 64 << 10
    finally:
        ix.close()


def test_records_cache_follows_writes_and_hides_deleted(index: Index) -> None:
    index.create_image({"id": "a", "status": "queued", "name": "x"})
    with pytest.raises(Conflict):
        index.create_image({"id": "a", "status": "queued"})
    index.update_image("a", lambda r: dict(r, name="y"))
    assert index.get_image("a") == {"id": "a", "status": "queued", "name": "y"}
    index.delete_image("a", lambda r: dict(r, status="deleted"))
    assert index.get_image("a") is None and index.list_images() == []
    with pytest.raises(NotFound):
        index.update_image("a", lambda r: r)
    with pytest.raises(Conflict):  # a deleted id is never reused
        index.create_image({"id": "a", "status": "queued"})
    assert [r["status"] for r in index.iter_images_all()] == ["deleted"]


def test_mutate_sees_a_private_copy(index: Index) -> None:
    index.create_image({"id": "a", "status": "queued", "tags": []})

    def bad(rec: dict) -> dict:
        rec["tags"].append("t")  # mutating in place must not leak into the cache
        raise NotFound("changed my mind")
    with pytest.raises(NotFound):
        index.update_image("a", bad)
    assert (index.get_image("a") or {})["tags"] == []


def test_list_of_ten_thousand_images_is_fast(tmp_path: Path) -> None:
    ix = Index(tmp_path / "ix", chunker_params=PARAMS, sync=False)
    try:
        for i in range(10_000):
            ix.create_image({"id": f"img-{i:05d}", "status": "active", "name": f"n{i}"})
        ix.close()
        ix = Index(tmp_path / "ix", chunker_params=PARAMS, sync=False)  # cache rebuilt on open
        t = time.perf_counter()
        for _ in range(100):
            images = ix.list_images()
        per_call = (time.perf_counter() - t) / 100
        assert len(images) == 10_000
        assert per_call < 0.005, f"list_images took {per_call * 1e3:.2f} ms"
    finally:
        ix.close()


def test_pin_takes_refs_only_while_saving(index: Index) -> None:
    ds = digests(3)
    saving(index, "a")
    assert index.pin("a", put_refs(ds) + [ChunkRef(300, None, 100), ChunkRef(400, ds[0], 100)]) == []
    assert refcounts(index) == {ds[0]: 2, ds[1]: 1, ds[2]: 1}
    index.update_image("a", lambda r: dict(r, status="active"))
    with pytest.raises(Gone):
        index.pin("a", put_refs(ds, start=500))
    assert refcounts(index) == {ds[0]: 2, ds[1]: 1, ds[2]: 1}


def test_pin_returns_unput_absent_chunks_and_commits_nothing(index: Index) -> None:
    ds = digests(2)
    saving(index, "a")
    assert index.pin("a", [ChunkRef(0, ds[0], 10, 5, 1, True), ChunkRef(10, ds[1], 10)]) == [ds[1]]
    assert refcounts(index) == {} and list(index.manifest("a")) == []


def test_dying_chunk_is_reported_then_reput_after_the_drop(index: Index) -> None:
    ds = digests(2)
    saving(index, "old")
    index.pin("old", put_refs(ds))
    index.delete_image("old", lambda r: dict(r, status="deleted"))
    assert sorted(index.zero_ref_chunks(time.time())) == sorted(ds)
    assert sorted(index.mark_dying(ds, time.time())) == sorted(ds)
    saving(index, "new")
    assert index.known_chunks(ds) == set()
    assert sorted(index.pin("new", put_refs(ds))) == sorted(ds)  # dying even though put: wait
    assert index.chunk_state(ds[0]) == "dying" and list(index.manifest("new")) == []
    assert index.drop_dying(ds) == 2
    assert index.pin("new", put_refs(ds)) == []  # re-put after the drop: created live
    assert refcounts(index) == {ds[0]: 1, ds[1]: 1}


def test_mark_dying_rechecks_refcount_and_age(index: Index) -> None:
    ds = digests(3)
    saving(index, "a")
    index.pin("a", put_refs(ds))
    index.abort_upload("a", lambda r: dict(r, status="queued"))
    zero = index.zero_ref_chunks(time.time())
    assert sorted(zero) == sorted(ds)
    index.update_image("a", lambda r: dict(r, status="saving"))
    index.pin("a", put_refs(ds[:1]))  # revived between the snapshot and the mark
    assert index.mark_dying(zero, time.time() - 3600) == []  # not old enough
    assert sorted(index.mark_dying(zero, time.time())) == sorted(ds[1:])
    assert index.drop_dying(ds) == 2  # the live one stays
    assert refcounts(index) == {ds[0]: 1}
    assert index.zero_ref_chunks(time.time()) == []


def test_abort_releases_only_while_saving(index: Index) -> None:
    ds = digests(2)
    saving(index, "a")
    index.pin("a", put_refs(ds))
    index.delete_image("a", lambda r: dict(r, status="pending_delete", deleted_at=100.0))
    assert index.abort_upload("a", lambda r: dict(r, status="queued"))["status"] == "pending_delete"
    assert refcounts(index) == {ds[0]: 1, ds[1]: 1}  # kept until the purge
    assert [r["id"] for r in index.pending_delete_images(older_than=99.0)] == []
    assert [r["id"] for r in index.pending_delete_images(older_than=101.0)] == ["a"]
    assert index.purge_pending("a")["status"] == "deleted"
    assert refcounts(index) == {ds[0]: 0, ds[1]: 0} and list(index.manifest("a")) == []
    assert index.purge_pending("a") is None


def test_saving_images_lists_interrupted_uploads(index: Index) -> None:
    saving(index, "s")
    index.create_image({"id": "q", "status": "queued"})
    assert index.saving_images() == ["s"]
