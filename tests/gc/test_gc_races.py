"""Deterministic interleavings of an upload with a collection (the stress test finds them by
chance; these force them). Each hooks the store's flush — the moment between an upload's puts
and its pin txn — and lets a collection or another upload run exactly there.

Four of them are the cases the plain protocol loses data in: an upload that *put* a blob
while its entry was dying or absent can have that blob deleted by a collection before it
pins, and pin would then create a live entry for a blob that is gone. The collection
generation closes them (gc.py docstring, R3): drop_dying bumps it, ingest reads it before its
lookups and puts and hands it to pin, pin refuses to create entries when it moved.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from cas_glance import gc
from cas_glance.domain import image as domain_image
from cas_glance.index import ChunkRef
from tests.blob_files import backdate
from tests.gc.lab import Lab


def hook_flush(lab: Lab, action: Callable[[], None]) -> None:
    """Run `action` once, right before the next flush (between an upload's puts and its pin)."""
    original = lab.store.flush
    done = []

    def flush(keys: object) -> None:
        if not done:
            done.append(True)
            action()
        original(keys)
    lab.store.flush = flush  # type: ignore[method-assign]


async def test_a_chunk_dying_at_pin_is_re_put_after_the_drop(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    digests = list(lab.chunks())
    lab.index.mark_dying(digests, time.time())  # a collection is between its txns
    finished = []

    def finish_later() -> None:  # the collection finishes while the upload waits on dying
        import threading

        def run() -> None:
            time.sleep(0.2)
            for d in digests:
                lab.store.delete(d)
            lab.index.drop_dying(digests)
            finished.append(True)
        threading.Thread(target=run).start()
    hook_flush(lab, finish_later)
    iid = await lab.upload(base_data)
    assert finished and await lab.download(iid) == base_data


async def test_a_blob_put_while_dying_is_not_lost_when_the_collection_finishes_before_pin(lab: Lab, base_data: bytes) -> None:
    lab.delete(await lab.upload(base_data))
    digests = list(lab.chunks())
    lab.index.mark_dying(digests, time.time())  # txn 1 of a running collection

    def rest_of_collection() -> None:  # blob deletes + txn 2, after the upload's (no-op) puts
        for d in digests:
            lab.store.delete(d)
        lab.index.drop_dying(digests)
    hook_flush(lab, rest_of_collection)
    iid = await lab.upload(base_data)
    assert await lab.download(iid) == base_data


async def test_a_blob_put_while_absent_survives_a_grace_zero_collection_before_pin(lab: Lab, base_data: bytes) -> None:
    def other_upload_deleted_and_collected() -> None:
        # another upload of the same data pins the chunks ours has put, is deleted, collected
        other = lab.create()
        lab.index.update_image(other, domain_image.begin_upload)
        refs, offset = [], 0
        for info in lab.store.list():
            refs.append(ChunkRef(offset, info.key, 1, info.size, 0, True))
            offset += 1
        assert lab.index.pin(other, refs) == []
        lab.index.abort_upload(other, lambda r: domain_image.revert_upload(r, "2026-01-01T00:00:00Z"))
        assert lab.collect(grace=0, sweep=False).blobs_deleted > 0
    hook_flush(lab, other_upload_deleted_and_collected)
    iid = await lab.upload(base_data)
    assert await lab.download(iid) == base_data


async def test_an_old_orphan_an_upload_relies_on_is_not_swept_before_pin(lab: Lab, base_data: bytes) -> None:
    import shutil

    from cas_glance.engine import Engine

    await lab.upload(base_data)
    digests = list(lab.chunks())
    lab.engine.close()
    shutil.rmtree(lab.engine.cfg.index_dir)  # the index forgot them: every blob is an orphan
    old = time.time() - 7200  # ... written long ago (a crash between put and pin)
    engine = Engine.open(lab.engine.cfg)
    lab = Lab(engine)
    for d in digests:
        backdate(lab.store, d, old)
    try:
        hook_flush(lab, lambda: gc.sweep_orphans(lab.index, lab.store, time.time(), 3600))
        iid = await lab.upload(base_data)  # its puts are no-ops: the files exist
        assert await lab.download(iid) == base_data
    finally:
        engine.close()


def _bump_generation(lab: Lab) -> None:
    """A collection that drops one unrelated chunk (the collection generation moves on)."""
    from cas_glance import blobfmt

    raw = b"unrelated chunk " * 64
    d, blob = blobfmt.digest(raw), blobfmt.encode(raw)
    lab.store.put(d, blob)
    iid = lab.create()
    lab.index.update_image(iid, domain_image.begin_upload)
    assert lab.index.pin(iid, [ChunkRef(0, d, len(raw), len(blob), 0, True)]) == []
    lab.index.abort_upload(iid, lambda r: domain_image.revert_upload(r, "2026-01-01T00:00:00Z"))
    assert lab.collect(grace=0, sweep=False).entries_dropped == 1


async def test_a_retry_claims_as_put_only_blobs_put_after_its_generation(lab: Lab, base_data: bytes) -> None:
    """Pin 1 fails (generation moved); before the re-put reads the generation again, a chunk
    that was live at pin 1 (so not re-put) is collected. The retry must not claim it put."""
    other = lab.create()
    lab.index.update_image(other, domain_image.begin_upload)

    def before_pin() -> None:  # our blobs are put; another upload pins half of them
        infos = list(lab.store.list())
        refs = [ChunkRef(i, info.key, 1, info.size, 0, True) for i, info in enumerate(infos[::2])]
        assert lab.index.pin(other, refs) == []
        _bump_generation(lab)  # so pin 1 returns the other half (absent, generation moved)
    hook_flush(lab, before_pin)
    original, done = lab.index.chunk_state, []

    def chunk_state(digest: str) -> str | None:  # the re-put is waiting on dying entries
        if not done:
            done.append(True)
            lab.index.abort_upload(other, lambda r: domain_image.revert_upload(r, "2026-01-01T00:00:00Z"))
            assert lab.collect(grace=0, sweep=False).blobs_deleted > 0
        return original(digest)
    lab.index.chunk_state = chunk_state  # type: ignore[method-assign]
    iid = await lab.upload(base_data)
    assert done and await lab.download(iid) == base_data
