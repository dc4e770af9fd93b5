"""Failures leave nothing behind: corrupt blobs are caught, failed/cancelled/oversized uploads
revert the image, release every pin and never leave an index entry without its blob."""
from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_helpers import (
    NthPutFails,
    blocks,
    manifest_len,
    random_bytes,
    read_all,
    small_cfg,
    upload,
)

from cas_glance.engine import Engine
from cas_glance.errors import (
    BadRequest,
    CorruptBlob,
    Gone,
    PayloadTooLarge,
    StoreFailure,
)
from stores import layout
from stores.fs import FilesystemStore
from stores.memory import MemoryStore

DATA = random_bytes(24 << 20, 11)  # three pin stretches


def assert_released(eng: Engine, image_id: str) -> None:
    """No manifest left, no chunk referenced, every chunk entry backed by a blob."""
    assert manifest_len(eng, image_id) == 0
    for digest, entry in eng.index.iter_chunks():
        assert entry["refcount"] == 0, (digest, entry)
        assert eng.store.exists(digest), f"index entry {digest} has no blob"


async def test_corrupt_blob_on_disk_is_detected_on_read(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "blobs", "never")
    eng = Engine.open(small_cfg(tmp_path), store)
    try:
        data = random_bytes(200_000, 12)
        await upload(eng, "c", data)
        _off, digest, _n = next(eng.index.manifest("c", 100_000))
        path = tmp_path / "blobs" / layout.object_name(digest)
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 0x01
        path.write_bytes(bytes(blob))
        assert await read_all(eng, "c", 0, 50_000) == data[:50_000]  # other chunks still fine
        with pytest.raises(CorruptBlob, match=digest):
            await read_all(eng, "c")
    finally:
        eng.close()


async def test_store_failing_mid_ingest_reverts_and_releases_pins(tmp_path: Path) -> None:
    store = NthPutFails(fail_at=300)  # ~19 MiB in: two stretches already pinned
    eng = Engine.open(small_cfg(tmp_path, chunk_min=16384, chunk_avg=65536, chunk_max=262144), store)
    try:
        pinned = []
        real_pin = eng.index.pin

        def spy(image_id, entries, *rest):  # type: ignore[no-untyped-def]
            out = real_pin(image_id, entries, *rest)
            pinned.append(len(list(entries)))
            return out
        eng.index.pin = spy  # type: ignore[method-assign]
        with pytest.raises(StoreFailure, match="injected failure"):
            await upload(eng, "f", DATA)
        assert pinned, "the failure should come after some pins"
        assert (eng.index.get_image("f") or {})["status"] == "queued"
        assert_released(eng, "f")
    finally:
        eng.close()


async def test_failed_store_jobs_leave_no_unretrieved_future_exception(tmp_path: Path) -> None:
    """Every put fails, with many store jobs in flight: the upload fails with the first error
    and no other job's exception is left for asyncio to log when the future is collected."""
    eng = Engine.open(small_cfg(tmp_path, chunk_min=16384, chunk_avg=65536, chunk_max=262144),
                      NthPutFails(fail_at=1))
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        with pytest.raises(StoreFailure, match="injected failure"):
            await upload(eng, "u", DATA[: 8 << 20])
        gc.collect()
        await asyncio.sleep(0)
        assert not [c.get("message") for c in seen]
    finally:
        loop.set_exception_handler(old)
        eng.close()


async def _stall_after(data: bytes, started: asyncio.Event) -> AsyncIterator[bytes]:
    async for b in blocks(data):
        yield b
    started.set()
    await asyncio.Event().wait()  # the client stops sending but keeps the connection


async def test_cancelled_upload_reverts_and_releases_pins(engine: Engine) -> None:
    engine.index.create_image({"id": "x", "status": "queued"})
    started = asyncio.Event()
    task = asyncio.ensure_future(upload(engine, "x", _stall_after(DATA, started)))
    await started.wait()
    while manifest_len(engine, "x") == 0:  # wait for the first pin to land
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (engine.index.get_image("x") or {})["status"] == "queued"
    assert_released(engine, "x")
    await upload(engine, "x", DATA[:1000])  # and the image can be uploaded again


async def test_image_deleted_during_upload_raises_gone(engine: Engine) -> None:
    engine.index.create_image({"id": "g", "status": "queued"})
    started = asyncio.Event()

    async def stream() -> AsyncIterator[bytes]:
        async for b in blocks(DATA[:10 << 20]):
            yield b
        started.set()
        await asyncio.sleep(0.05)
        async for b in blocks(DATA[10 << 20:]):
            yield b
    task = asyncio.ensure_future(upload(engine, "g", stream()))
    await started.wait()
    engine.index.delete_image("g", lambda r: dict(r, status="deleted"))
    with pytest.raises(Gone):
        await task
    assert_released(engine, "g")


async def test_size_cap_stops_the_upload_early(engine: Engine) -> None:
    consumed = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal consumed
        async for b in blocks(DATA):
            consumed += len(b)
            yield b
    with pytest.raises(PayloadTooLarge):
        await upload(engine, "p", stream(), size_cap=5 << 20)
    assert consumed <= 6 << 20
    assert (engine.index.get_image("p") or {})["status"] == "queued"
    assert_released(engine, "p")


@pytest.mark.parametrize("announced", [1000, len(DATA) // 2 + 1])
async def test_size_other_than_announced_is_a_bad_request(engine: Engine, announced: int) -> None:
    with pytest.raises(BadRequest):
        await upload(engine, "b", DATA[:len(DATA) // 2], expected_size=announced)
    assert (engine.index.get_image("b") or {})["status"] == "queued"
    assert_released(engine, "b")


async def test_pin_finding_a_dying_chunk_waits_reputs_and_retries(tmp_path: Path) -> None:
    store = MemoryStore()
    eng = Engine.open(small_cfg(tmp_path), store)
    try:
        data = random_bytes(300_000, 13)
        await upload(eng, "old", data)
        eng.index.delete_image("old", lambda r: dict(r, status="deleted"))
        now = 1e12
        dying = eng.index.mark_dying(eng.index.zero_ref_chunks(now), now)
        assert dying
        task = asyncio.ensure_future(upload(eng, "new", data))
        await asyncio.sleep(0.3)
        assert not task.done(), "pin must wait while the chunks are dying"
        for d in dying:  # the collector deletes the blobs, then drops the entries
            store.delete(d)
        assert eng.index.drop_dying(dying) == len(dying)
        await task
        assert await read_all(eng, "new") == data
        assert all(store.exists(d) for d in dying)
    finally:
        eng.close()
