"""PackStore: the conformance suite under every fsync policy, plus what only packs have:
records on disk, durability order, pending locations, compaction, other processes' packs."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Iterator

import pytest

import stores.pack as pack_mod
from stores.errors import BlobNotFound, StorageFull
from stores.pack import FSYNC_POLICIES, MAGIC, REC_HEAD, PackStore
from tests.stores.contract import StoreContract, blob_for, open_file_store, random_key, random_keys


class TestPackStore(StoreContract):
    @pytest.fixture(params=FSYNC_POLICIES)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PackStore]:
        yield from open_file_store(PackStore, request, tmp_path)


def pack_files(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*/*.pack"))


def put_all(store: PackStore, keys: list[str], size: int = 1000) -> None:
    for k in keys:
        store.put(k, blob_for(k, size))
    store.flush(keys)


def test_records_describe_themselves(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    keys = random_keys(5)
    put_all(store, keys, 300)
    store.close()
    (pack,) = pack_files(tmp_path)
    raw = pack.read_bytes()
    assert raw.startswith(MAGIC)
    pos, found = len(MAGIC), []
    while pos < len(raw):
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
    assert all(p.stat().st_size <= (64 << 10) + 10_000 + REC_HEAD.size for p in pack_files(tmp_path))
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
    assert before - after == report.bytes_reclaimed - started * len(MAGIC) > 60 * 10_000
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


def test_get_into_scatters_the_blob_over_the_buffers(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    key, other = random_key(), random_key()
    data = blob_for(key, 5000)
    store.put(key, data)
    store.put(other, blob_for(other, 5000))  # a neighbour in the pack must not leak in
    head, body = bytearray(16), bytearray(6000)
    assert store.get_into(key, [memoryview(head), memoryview(body)]) == 5000
    assert bytes(head) + bytes(body[:4984]) == data and body[4984:] == bytes(1016)
    small = bytearray(100)  # too little room: fills what fits, reports the whole size
    assert store.get_into(key, [memoryview(small)]) == 5000 and bytes(small) == data[:100]
    with pytest.raises(BlobNotFound):
        store.get_into(random_key(), [memoryview(small)])
    store.close()


def test_put_many_writes_the_new_blobs_back_to_back_and_skips_known_ones(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    old, new = random_key(), random_keys(3)
    put_all(store, [old], 1000)
    (pack,) = pack_files(tmp_path)
    before = pack.stat().st_size
    blobs = {k: blob_for(k, 1000) for k in new}
    # each blob as its parts (the engine passes header and payload apart)
    store.put_many([(old, (blob_for(old, 1000),))] + [(k, (b[:16], memoryview(b)[16:])) for k, b in blobs.items()])
    assert pack.stat().st_size - before == 3 * (REC_HEAD.size + 1000)  # `old` not again
    offsets = [store._locate(k, bytes.fromhex(k)).offset for k in new]  # type: ignore[union-attr]
    assert offsets == [before + REC_HEAD.size + i * (REC_HEAD.size + 1000) for i in range(3)]
    store.flush(new)
    assert all(store.get(k) == blob_for(k, 1000) for k in [old, *new])
    store.close()
