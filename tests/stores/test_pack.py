"""PackStore: the conformance suite under every fsync policy (direct I/O where the file
system takes it, and once buffered), plus what only packs have: records on disk, durability
order, pending locations, compaction, other processes' packs, the direct-I/O stage, get_many."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Iterator

import pytest

import stores.pack as pack_mod
from stores import direct
from stores.errors import BlobNotFound, StorageFull, StoreError
from stores.pack import FSYNC_POLICIES, MAGIC, REC_HEAD, PackStore
from tests.stores.contract import StoreContract, blob_for, open_file_store, random_key, random_keys


class TestPackStore(StoreContract):
    @pytest.fixture(params=FSYNC_POLICIES)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PackStore]:
        yield from open_file_store(PackStore, request, tmp_path)


class TestBufferedPackStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[PackStore]:
        store = PackStore(tmp_path / "blobs", direct_io=False)
        yield store
        store.close()


def pack_files(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*/*.pack"))


def put_all(store: PackStore, keys: list[str], size: int = 1000) -> None:
    for k in keys:
        store.put(k, blob_for(k, size))
    store.flush(keys)


def test_records_describe_themselves(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    keys = random_keys(5)
    put_all(store, keys[:2], 300)
    put_all(store, keys[2:], 300)  # two flushes
    store.close()
    (pack,) = pack_files(tmp_path)
    raw = pack.read_bytes()
    assert raw.startswith(MAGIC)
    pos, found = len(MAGIC), []
    while pos < len(raw):
        if raw[pos:pos + 4] == bytes(4):  # a flush's padding: records go on at the next block
            assert raw[pos:direct.align_up(pos)] == bytes(direct.align_up(pos) - pos)
            pos = direct.align_up(pos)
            continue
        magic, kb, n = REC_HEAD.unpack_from(raw, pos)
        assert magic == b"CASR"
        pos += REC_HEAD.size
        assert raw[pos:pos + n] == blob_for(kb.hex(), 300)
        found.append(kb.hex())
        pos += n
    assert found == keys


def test_put_is_visible_before_flush_and_survives_reopen_after(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    key = random_key()
    store.put(key, b"x" * 10)
    assert store.get(key) == b"x" * 10 and store.exists(key)
    assert [i.key for i in store.list()] == [key]
    store.flush([key])
    store.close()
    again = PackStore(tmp_path)
    assert again.get(key) == b"x" * 10
    again.close()


def test_unflushed_put_is_not_recorded_until_flush(tmp_path: Path) -> None:
    """What another process sees: only committed locations."""
    writer = PackStore(tmp_path)
    key = random_key()
    writer.put(key, b"abc")
    reader = PackStore(tmp_path)
    assert not reader.exists(key)
    writer.flush([key])
    assert reader.get(key) == b"abc"
    reader.close()
    writer.close()


def test_flush_skips_a_key_deleted_since_its_put_and_commits_the_rest(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    kept, gone = random_key(), random_key()
    for k in (kept, gone):
        store.put(k, blob_for(k))
    store.delete(gone)
    store.flush([gone, kept])
    other = PackStore(tmp_path)  # what is committed, not what is pending in `store`
    assert other._locate(kept, bytes.fromhex(kept)) is not None and not other.exists(gone)
    other.close()
    store.close()


def test_flush_syncs_the_pack_before_the_location_commits(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path, fsync="batch")
    events: list[str] = []
    real_sync, real_write = os.fdatasync, store._write
    monkeypatch.setattr(pack_mod.os, "fdatasync", lambda fd: (events.append("sync"), real_sync(fd))[1])
    monkeypatch.setattr(store, "_write", lambda fn: (events.append("commit"), real_write(fn))[1])
    key = random_key()
    store.put(key, b"data")
    assert events == []  # batch: put alone never syncs
    store.flush([key])
    assert events == ["sync", "commit"]
    monkeypatch.undo()
    store.close()


def test_a_failing_sync_commits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path)
    key = random_key()
    store.put(key, b"data")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pack_mod.os, "fdatasync", broken)
    with pytest.raises(StorageFull):
        store.flush([key])
    monkeypatch.undo()
    other = PackStore(tmp_path)
    assert not other.exists(key)  # never recorded for anyone else
    other.close()
    store.flush([key])  # the next flush makes it durable
    assert PackStore(tmp_path).exists(key)
    store.close()


def test_packs_rotate_at_their_size(tmp_path: Path) -> None:
    store = PackStore(tmp_path, pack_bytes=64 << 10)
    keys = random_keys(40)
    put_all(store, keys, 10_000)
    assert len(pack_files(tmp_path)) >= 6
    limit = (64 << 10) + 10_000 + REC_HEAD.size + direct.ALIGN  # the last block is padded
    assert all(p.stat().st_size <= limit for p in pack_files(tmp_path))
    assert all(store.get(k) == blob_for(k, 10_000) for k in keys)
    store.close()


def test_delete_then_compact_removes_empty_packs_and_rewrites_sparse_ones(tmp_path: Path) -> None:
    store = PackStore(tmp_path, pack_bytes=256 << 10)
    keys = random_keys(100)
    put_all(store, keys, 10_000)
    store.close()
    store = PackStore(tmp_path, pack_bytes=256 << 10)  # nothing of ours open: all compactable
    first = len(pack_files(tmp_path))
    dropped, kept = keys[:60], keys[60:]
    store.delete_many(dropped + keys[70:80])  # 70 dropped: the first packs empty, one sparse
    kept = keys[60:70] + keys[80:]
    files = set(pack_files(tmp_path))
    before = sum(p.stat().st_size for p in files)
    report = store.compact(max_live_ratio=0.5)
    after = sum(p.stat().st_size for p in pack_files(tmp_path))
    assert report.packs_removed >= 2 and report.packs_rewritten >= 1
    started = len(set(pack_files(tmp_path)) - files)  # each new pack begins with MAGIC
    # the new pack's last block is padded (direct I/O): written, not reclaimed
    padding = report.bytes_reclaimed - started * len(MAGIC) - (before - after)
    assert 0 <= padding < started * direct.ALIGN and before - after > 60 * 10_000
    assert len(pack_files(tmp_path)) < first
    assert all(store.get(k) == blob_for(k, 10_000) for k in kept)
    assert not any(store.exists(k) for k in dropped)
    assert store.compact(max_live_ratio=0.5).packs_removed == 0  # nothing left to do
    store.close()
    reopened = PackStore(tmp_path)
    assert sorted(i.key for i in reopened.list()) == sorted(kept)
    assert all(reopened.get(k) == blob_for(k, 10_000) for k in kept)
    reopened.close()


def test_compaction_never_touches_a_pack_another_process_writes(tmp_path: Path) -> None:
    writer = PackStore(tmp_path)
    key = random_key()
    writer.put(key, b"pending in the writer")
    other = PackStore(tmp_path)
    assert other.compact(stray_age=0).packs_removed == 0  # locked: not a stray
    assert len(pack_files(tmp_path)) == 1
    writer.flush([key])
    assert other.get(key) == b"pending in the writer"
    other.close()
    writer.close()


def test_stray_pack_of_a_crashed_writer_is_removed_after_its_age(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import os
        from stores.pack import PackStore
        s = PackStore({str(tmp_path)!r})
        s.put("{'ab' * 32}", b"never flushed")
        os._exit(0)  # no close: the pack holds bytes no location names
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    store = PackStore(tmp_path)
    assert len(pack_files(tmp_path)) == 1 and not store.exists("ab" * 32)
    assert store.compact(stray_age=3600).packs_removed == 0  # young: maybe a slow writer
    assert store.compact(stray_age=0).packs_removed == 1
    assert pack_files(tmp_path) == []
    store.close()


def test_compaction_repoints_only_locations_unchanged_since_the_copy(tmp_path: Path) -> None:
    """A blob deleted between copy and repoint stays deleted (compare and set)."""
    store = PackStore(tmp_path, pack_bytes=1 << 20)
    keys = random_keys(20)
    put_all(store, keys, 10_000)
    store.close()
    store, other = PackStore(tmp_path), PackStore(tmp_path)
    store.delete_many(keys[:15])
    survivors, victim = keys[15:19], keys[19]
    real = store._repoint

    def racing(txn: object, copies: list) -> int:  # type: ignore[type-arg]
        assert len(copies) == 5  # copied, not yet repointed: now another process deletes one
        return real(txn, copies)
    store._repoint = racing  # type: ignore[method-assign]
    real_move = store._move_live

    def move(pack_id: bytes, fd: int) -> int:
        real_copy = store._committed_loc
        seen: list[bytes] = []

        def copy_then_delete(kb: bytes) -> pack_mod.Loc | None:
            loc = real_copy(kb)
            seen.append(kb)
            if len(seen) == 5:  # every live blob looked up: delete the victim before repoint
                other.delete_many([victim])
            return loc
        store._committed_loc = copy_then_delete  # type: ignore[method-assign]
        return real_move(pack_id, fd)
    store._move_live = move  # type: ignore[method-assign]
    report = store.compact(max_live_ratio=0.9)
    assert report.blobs_moved == 4 and report.packs_rewritten == 1
    assert all(store.get(k) == blob_for(k, 10_000) for k in survivors)
    assert not store.exists(victim) and not other.exists(victim)
    store.close()
    other.close()


def test_read_after_compaction_moved_the_blob(tmp_path: Path) -> None:
    """A reader that found the old location opens a removed pack: it looks the key up again."""
    store = PackStore(tmp_path, pack_bytes=64 << 10)
    keys = random_keys(12)
    put_all(store, keys, 10_000)
    store.close()
    reader, compactor = PackStore(tmp_path), PackStore(tmp_path, pack_bytes=64 << 10)
    compactor.delete_many(keys[:-1])
    real_locate, calls = reader._locate, []

    def stale_first(key: str, kb: bytes) -> pack_mod.Loc | None:
        loc = real_locate(key, kb)
        calls.append(loc)
        if len(calls) == 1:  # the lookup happened; now the pack goes away under us
            compactor.compact(max_live_ratio=1.0)
        return loc
    reader._locate = stale_first  # type: ignore[method-assign]
    assert reader.get(keys[-1]) == blob_for(keys[-1], 10_000)
    assert len(calls) == 2 and calls[0] != calls[1]
    reader.close()
    compactor.close()


def test_concurrent_puts_and_flushes_from_many_threads(tmp_path: Path) -> None:
    store = PackStore(tmp_path, pack_bytes=1 << 20)
    keys = random_keys(400)
    errors: list[BaseException] = []

    def work(part: list[str]) -> None:
        try:
            for i in range(0, len(part), 10):
                put_all(store, part[i:i + 10], 5000)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(keys[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.close()
    again = PackStore(tmp_path)
    assert sorted(i.key for i in again.list()) == sorted(keys)
    assert all(again.get(k) == blob_for(k, 5000) for k in keys)
    again.close()


def test_released_packs_drop_their_lock(tmp_path: Path) -> None:
    store = PackStore(tmp_path, pack_bytes=32 << 10)
    put_all(store, random_keys(10), 10_000)
    current = store._current.path if store._current else ""
    sealed = [p for p in pack_files(tmp_path) if str(p) != current]
    assert len(sealed) >= 2
    for path in sealed:  # sealed and committed: anyone may lock (compact) it now
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    store.close()


def test_unwritable_root_gives_a_read_only_store(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a directory")
    store = PackStore(root)
    assert not store.capabilities.writable
    with pytest.raises(Exception):
        store.put(random_key(), b"x")
    assert not store.exists(random_key())
    store.close()


def test_get_many_reads_blobs_lying_close_together_with_one_read(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path, pack_bytes=64 << 10)
    keys = random_keys(30)
    put_all(store, keys, 5000)  # three packs or so
    reads: list[int] = []
    real = direct.read_into
    monkeypatch.setattr(direct, "read_into", lambda fd, off, n, buf: (reads.append(n), real(fd, off, n, buf))[1])

    def read_all(wanted: list[str]) -> None:
        reads.clear()
        assert [bytes(b) for b in store.get_many(wanted)] == [blob_for(k, 5000) for k in wanted]
    packs = len({store._locate(k, bytes.fromhex(k)).pack for k in keys})  # type: ignore[union-attr]
    read_all(keys)
    assert len(reads) == packs  # one read per pack: each holds a run of them
    read_all(keys[::-1])  # any order (concurrent store jobs interleave an upload's chunks)
    assert len(reads) == packs
    read_all(keys[::2])  # gaps of one blob are read through
    assert len(reads) == packs
    monkeypatch.setattr(pack_mod, "GAP_BYTES", 1000)
    read_all(keys[::2])  # gaps wider than GAP_BYTES are not
    assert len(reads) == 15
    monkeypatch.setattr(pack_mod, "SPAN_BYTES", 12_000)
    read_all(keys)  # a window holds at most SPAN_BYTES of blobs: two 5000-byte blobs
    assert len(reads) >= 15 and max(reads) == 2 * 5000 + REC_HEAD.size
    store.close()


def test_get_many_mixes_pending_and_committed_and_raises_on_a_missing_key(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    committed, pending, missing = random_keys(3), random_keys(2), random_key()
    put_all(store, committed, 3000)
    for k in pending:
        store.put(k, blob_for(k, 3000))
    order = [committed[0], pending[0], committed[1], committed[2], pending[1]]
    assert [bytes(b) for b in store.get_many(order)] == [blob_for(k, 3000) for k in order]
    blobs = store.get_many([committed[0], missing])
    assert bytes(next(blobs)) == blob_for(committed[0], 3000)
    with pytest.raises(BlobNotFound):
        next(blobs)
    store.close()


def test_get_many_looks_again_when_compaction_removed_the_pack(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path)
    keys = random_keys(4)
    put_all(store, keys, 2000)
    real, calls = store._read_fd, []

    def gone_once(pack_id: bytes) -> int:
        calls.append(pack_id)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory")
        return real(pack_id)
    monkeypatch.setattr(store, "_read_fd", gone_once)
    assert [bytes(b) for b in store.get_many(keys)] == [blob_for(k, 2000) for k in keys]
    assert len(calls) == 1 + len(keys)  # the run failed, then each blob by itself
    store.close()


def test_put_many_writes_the_new_blobs_back_to_back_and_skips_known_ones(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    old, new = random_key(), random_keys(3)
    put_all(store, [old], 1000)
    assert store._current is not None
    before = store._current.end
    blobs = {k: blob_for(k, 1000) for k in new}
    # each blob as its parts (the engine passes header and payload apart)
    store.put_many([(old, (blob_for(old, 1000),))] + [(k, (b[:16], memoryview(b)[16:])) for k, b in blobs.items()])
    assert store._current.end - before == 3 * (REC_HEAD.size + 1000)  # `old` not again
    offsets = [store._locate(k, bytes.fromhex(k)).offset for k in new]  # type: ignore[union-attr]
    assert offsets == [before + REC_HEAD.size + i * (REC_HEAD.size + 1000) for i in range(3)]
    store.flush(new)
    assert all(store.get(k) == blob_for(k, 1000) for k in [old, *new])
    store.close()
    (pack,) = pack_files(tmp_path)
    raw = pack.read_bytes()
    assert [raw[o:o + 1000] for o in offsets] == list(blobs.values())


# -- direct I/O ----------------------------------------------------------------------------
@pytest.fixture
def small_stage(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 64 KiB stage, so a few hundred KiB of blobs cross several writes."""
    monkeypatch.setattr(direct, "STAGE_BYTES", 64 << 10)
    return 64 << 10


def test_direct_io_is_on_wherever_the_file_system_takes_it(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    assert store.direct_io == direct.supported(str(tmp_path / "packs"))
    store.close()
    shm = Path("/dev/shm")
    if shm.is_dir() and not direct.supported(str(shm)):  # tmpfs refuses O_DIRECT
        root = Path(tempfile.mkdtemp(dir=shm))
        try:
            with pytest.raises(ValueError, match="O_DIRECT"):
                PackStore(root / "forced", direct_io=True)
            fallback = PackStore(root / "auto")
            assert not fallback.direct_io
            put_all(fallback, [key := random_key()], 100)
            assert fallback.get(key) == blob_for(key, 100)
            fallback.close()
        finally:
            shutil.rmtree(root)


def test_unflushed_blobs_are_read_from_the_stage_and_the_disk(tmp_path: Path, small_stage: int) -> None:
    store = PackStore(tmp_path)
    assert store.direct_io
    keys = random_keys(60)
    for k in keys:  # 60 x 5 KiB: several stage writes, blobs straddling what is written
        store.put(k, blob_for(k, 5000))
    assert store._current is not None and store._current.tail is not None
    tail = store._current.tail
    assert 0 < tail.base < tail.end  # part on disk, the rest only staged
    assert all(store.get(k) == blob_for(k, 5000) for k in keys)
    assert [bytes(b) for b in store.get_many(keys)] == [blob_for(k, 5000) for k in keys]
    store.flush(keys)
    assert tail.base == tail.end
    other = PackStore(tmp_path)  # another process's view: only what is on disk
    assert all(other.get(k) == blob_for(k, 5000) for k in keys)
    other.close()
    store.close()


def test_a_flushed_partial_block_is_padded_and_never_written_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path)
    first, second = random_key(), random_key()
    put_all(store, [first], 100)
    (pack,) = pack_files(tmp_path)
    assert pack.stat().st_size == direct.ALIGN  # the padded last block
    writes: list[int] = []
    real = direct.write_all
    monkeypatch.setattr(direct, "write_all", lambda fd, view, off: (writes.append(off), real(fd, view, off))[1])
    put_all(store, [second], 100)
    assert writes == [direct.ALIGN]  # the next block, not the first one again
    assert store._locate(second, bytes.fromhex(second)).offset == direct.ALIGN + REC_HEAD.size  # type: ignore[union-attr]
    assert pack.stat().st_size == 2 * direct.ALIGN
    other = PackStore(tmp_path)
    assert other.get(first) == blob_for(first, 100) and other.get(second) == blob_for(second, 100)
    other.close()
    store.close()


def test_a_failed_direct_write_retires_the_pack_and_loses_nothing_staged(
        tmp_path: Path, small_stage: int, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PackStore(tmp_path)
    before = random_keys(5)
    for k in before:
        store.put(k, blob_for(k, 5000))
    broken_pack = store._current
    real = direct.write_all

    def full(fd: int, view: memoryview, offset: int) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(direct, "write_all", full)
    bad = random_keys(20)
    with pytest.raises(StorageFull):
        for k in bad:  # the stage fills up and its write fails
            store.put(k, blob_for(k, 5000))
    monkeypatch.setattr(direct, "write_all", real)
    assert store._current is not broken_pack  # no more appends to it
    after = random_key()
    store.put(after, blob_for(after, 5000))
    assert store._current is not None and store._current.id != broken_pack.id  # type: ignore[union-attr]
    store.flush(before + [after])  # the stage's blobs go to disk at the flush
    store.close()
    again = PackStore(tmp_path)
    assert all(again.get(k) == blob_for(k, 5000) for k in before + [after])
    again.close()


def test_a_truncated_pack_is_a_store_error_for_get_and_get_many(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    keys = random_keys(3)
    put_all(store, keys, 5000)
    store.close()
    (pack,) = pack_files(tmp_path)
    os.truncate(pack, 2 * direct.ALIGN)  # the first blob still whole, the others cut off
    reader = PackStore(tmp_path)
    assert reader.get(keys[0]) == blob_for(keys[0], 5000)
    with pytest.raises(StoreError, match="truncated"):
        reader.get(keys[2])
    with pytest.raises(StoreError, match="truncated"):
        list(reader.get_many(keys))
    reader.close()
