"""Collection through the real engine: delete drops references, the collector frees exactly
what no live image uses, delayed delete waits for scrub_time, crashes between the two
collection txns are finished by the next run, orphans and temp files are swept."""
from __future__ import annotations

import argparse
import os
import time

import pytest

from cas_glance import blobfmt, gc
from tests.gc.lab import Lab, variant


def _gc_args(**kw: object) -> argparse.Namespace:
    base = dict(grace_seconds=0, dry_run=False, no_sweep=False)
    base.update(kw)
    return argparse.Namespace(**base)


async def test_delete_releases_references_in_the_same_txn_as_status(lab: Lab, base_data: bytes) -> None:
    iid = await lab.upload(base_data)
    assert all(e["refcount"] >= 1 for e in lab.chunks().values())
    rec = lab.delete(iid)  # one call = one txn: status and references together
    assert rec["status"] == "deleted"
    assert all(e["refcount"] == 0 for e in lab.chunks().values())
    assert list(lab.index.manifest(iid)) == []
    assert lab.index.get_image(iid) is None


async def test_collect_frees_exactly_what_only_the_deleted_image_used(lab: Lab, base_data: bytes) -> None:
    other = variant(base_data, seed=7)
    a = await lab.upload(base_data)
    before_b = lab.stored()
    b = await lab.upload(other)
    assert lab.stored()[0] > before_b[0]  # b added some chunks of its own
    lab.delete(b)
    report = lab.collect(grace=0)
    assert lab.stored() == before_b  # exactly b's own chunks went
    assert report.blobs_deleted == report.entries_dropped > 0
    assert await lab.download(a) == base_data
    assert all(e["refcount"] >= 1 for e in lab.chunks().values())


async def test_grace_keeps_recently_released_chunks(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    before = lab.stored()
    assert lab.collect(grace=3600).blobs_deleted == 0
    assert lab.stored() == before
    assert lab.collect(grace=3600, clock=lambda: time.time() + 3601).blobs_deleted == before[0]
    assert lab.stored() == (0, 0)


async def test_delayed_delete_keeps_data_until_scrub_time(lab: Lab, base_data: bytes) -> None:
    iid = await lab.upload(base_data)
    rec = lab.delete(iid, delayed=True, when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    assert rec["status"] == "pending_delete" and lab.index.get_image(iid) is None
    before = lab.stored()
    report = lab.collect(grace=0, scrub_time=3600)
    assert report.images_purged == 0 and lab.stored() == before
    report = lab.collect(grace=0, scrub_time=3600, clock=lambda: time.time() + 3601)
    assert report.images_purged == 1
    assert lab.stored() == (0, 0)  # purge then collection, in the same run with grace 0
    assert [r["status"] for r in lab.index.iter_images_all()] == ["deleted"]


async def test_dry_run_prints_the_plan_and_changes_nothing(lab: Lab, base_data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    lab.delete(await lab.upload(base_data))
    before, chunks = lab.stored(), lab.chunks()
    report = lab.collect(grace=0, dry_run=True)
    assert (report.chunks_planned, report.bytes_planned) == before
    assert lab.stored() == before and lab.chunks() == chunks
    lab.engine.index.close()  # main opens its own index, as the CLI process would
    try:
        assert gc.main(lab.engine.cfg, _gc_args(dry_run=True)) == 0
        out = capsys.readouterr().out
        assert f"collect {before[0]} chunk(s), {before[1]} bytes" in out
        assert gc.main(lab.engine.cfg, _gc_args()) == 0
        assert f"freed {before[0]} blob(s), {before[1]} bytes" in capsys.readouterr().out
    finally:
        lab.engine.index = lab.index = type(lab.index)(lab.engine.cfg.index_dir, chunker_params=None)
    assert lab.stored() == (0, 0)


async def test_a_crash_between_the_txns_is_finished_by_the_next_run(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    digests = list(lab.chunks())
    marked = lab.index.mark_dying(digests, time.time())  # txn 1, then "crash"
    assert sorted(marked) == sorted(digests)
    for d in digests[: len(digests) // 2]:  # some blobs were deleted before the crash
        lab.store.delete(d)
    report = lab.collect(grace=3600)  # dying entries are finished whatever the grace
    assert report.entries_dropped == len(digests)
    assert lab.chunks() == {} and lab.stored() == (0, 0)


async def test_an_upload_after_collection_re_puts_what_was_collected(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    lab.collect(grace=0)
    iid = await lab.upload(base_data)
    assert await lab.download(iid) == base_data


async def test_pin_revives_a_planned_chunk_and_collection_skips_it(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    snap = next(gc.chunk_snapshots(lab.index))
    plan = gc.plan_gc(snap, time.time(), 0)
    iid = await lab.upload(base_data)  # references every planned chunk again
    report = gc.execute_gc(lab.index, lab.store, plan)
    assert report.chunks_revived == plan.chunks and report.blobs_deleted == 0
    assert await lab.download(iid) == base_data


async def test_orphan_blobs_are_swept_after_grace_only(lab: Lab, base_data: bytes) -> None:
    from cas_glance import blobfmt

    keep = await lab.upload(base_data)
    raw = os.urandom(5000)
    orphan = blobfmt.digest(raw)
    lab.store.put(orphan, blobfmt.encode(raw))  # a crash between put and pin
    n, size = lab.stored()
    assert lab.collect(grace=3600).orphans_deleted == 0
    report = lab.collect(grace=3600, clock=lambda: time.time() + 3601)
    assert report.orphans_deleted == 1
    assert lab.stored()[0] == n - 1 and report.orphan_bytes == size - lab.stored()[1]
    assert await lab.download(keep) == base_data


def test_stale_temp_files_of_the_file_store_are_removed(lab: Lab) -> None:
    tmp = lab.store.root / "packs" / "ab" / ".tmp-crashed-writer"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"x")
    os.utime(tmp, (time.time() - 7200, time.time() - 7200))
    assert lab.collect(grace=3600).temp_files == 1
    assert not tmp.exists()


def test_a_second_collection_skips_while_one_holds_the_lock(lab: Lab) -> None:
    with gc.collection_lock(lab.lock) as held:
        assert held
        assert lab.collect(grace=0).skipped_locked
    assert not lab.collect(grace=0).skipped_locked


async def test_recover_saving_reverts_interrupted_uploads_and_releases_pins(lab: Lab, base_data: bytes) -> None:
    from cas_glance import blobfmt
    from cas_glance.domain import image as domain_image
    from cas_glance.index import ChunkRef

    iid = lab.create()
    lab.index.update_image(iid, domain_image.begin_upload)
    chunk = base_data[:4096]
    d = blobfmt.digest(chunk)
    blob = blobfmt.encode(chunk)
    lab.store.put(d, blob)
    assert lab.index.pin(iid, [ChunkRef(0, d, 4096, len(blob), blobfmt.codec_of(blob), True)]) == []
    assert lab.chunks()[d]["refcount"] == 1
    assert gc.recover_saving(lab.engine) == {"reverted": 1, "dying_finished": 0}
    assert lab.index.get_image(iid)["status"] == "queued"
    assert lab.chunks()[d]["refcount"] == 0
    lab.collect(grace=0)
    assert lab.stored() == (0, 0)


async def test_the_periodic_collector_runs_every_wakeup_time_until_stopped(lab: Lab, base_data: bytes) -> None:
    import asyncio

    lab.delete(await lab.upload(base_data))
    cfg = lab.engine.cfg.replace(wakeup_time=1, gc_grace_seconds=0)
    stop = asyncio.Event()
    task = asyncio.create_task(gc.run_collector(lab.engine, cfg, stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if lab.stored() == (0, 0):
            break
    stop.set()
    await asyncio.wait_for(task, 10)
    assert lab.stored() == (0, 0) and lab.chunks() == {}


async def test_the_periodic_collector_sweeps_orphans_at_start_then_only_per_sweep_interval(
        lab: Lab, base_data: bytes) -> None:
    import asyncio

    def orphan(seed: int) -> str:
        raw = variant(base_data, seed=seed)[:8192]
        key = blobfmt.digest(raw)
        lab.store.put(key, blobfmt.encode(raw))  # a crash between put and pin
        return key

    first = orphan(11)
    cfg = lab.engine.cfg.replace(wakeup_time=1, gc_grace_seconds=0, orphan_sweep_interval=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(gc.run_collector(lab.engine, cfg, stop))
    for _ in range(100):  # the first run after start-up sweeps
        await asyncio.sleep(0.05)
        if not lab.store.exists(first):
            break
    assert not lab.store.exists(first)
    second = orphan(12)
    await asyncio.sleep(2.5)  # at least one more run, inside the sweep interval
    stop.set()
    await asyncio.wait_for(task, 10)
    assert lab.store.exists(second)
