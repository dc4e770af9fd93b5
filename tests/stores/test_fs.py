"""FilesystemStore: the conformance suite under every fsync policy, plus what only a filesystem
has: the on-disk layout, temp files, full disks, read-only roots and when fsync happens.

Full-disk and read-only-mount tests use a real tmpfs when this process may mount one (root
with CAP_SYS_ADMIN) and skip, saying so, otherwise; the always-run variants reach the same code
through an OSError raised by the write call or a root that cannot be a directory.
"""
from __future__ import annotations

import errno
import logging
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import pytest

import stores.fs as fs_mod
from stores.errors import BlobNotFound, StorageFull, StoreError
from stores.fs import FSYNC_POLICIES, FilesystemStore
from tests.stores.contract import StoreContract, blob_for, open_file_store, random_key


class TestFilesystemStore(StoreContract):
    @pytest.fixture(params=FSYNC_POLICIES)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FilesystemStore]:
        yield from open_file_store(FilesystemStore, request, tmp_path)


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """mount(options) -> mount point of a fresh tmpfs; unmounted after the test."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


# -- layout and temp files -----------------------------------------------------------------


def test_blob_lives_at_chunks_ab_cd_key(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    key = random_key()
    store.put(key, b"payload")
    path = tmp_path / "chunks" / key[:2] / key[2:4] / key
    assert path.read_bytes() == b"payload"
    assert all_files(tmp_path) == [path]  # no temp file, no start-up probe left behind


def test_put_of_an_existing_key_does_not_rewrite_the_file(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    key = random_key()
    store.put(key, b"first")
    before = os.stat(tmp_path / "chunks" / key[:2] / key[2:4] / key)
    store.put(key, b"first")
    after = os.stat(tmp_path / "chunks" / key[:2] / key[2:4] / key)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_temp_leftover_is_not_listed_and_an_old_one_is_swept(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    key = random_key()
    store.put(key, b"blob")
    d = tmp_path / "chunks" / key[:2] / key[2:4]
    old, young = d / f".tmp-{key}-dead", d / f".tmp-{key}-busy"
    old.write_bytes(b"half a blob")
    young.write_bytes(b"a put in flight")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))

    assert [b.key for b in store.list()] == [key]
    assert store.sweep_temp(max_age=3600) == 1
    assert not old.exists() and young.exists()
    assert store.get(key) == b"blob"


def test_listing_after_a_key_does_not_open_fan_out_dirs_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemStore(tmp_path)
    keys = ["00" * 32, "10" * 32, "f0" * 32, "f0f1" + "00" * 30]
    for k in keys:
        store.put(k, b"")
    opened: list[str] = []
    real_listdir = os.listdir

    def spy(path: str | os.PathLike[str]) -> list[str]:  # records, then does the real thing
        opened.append(Path(path).relative_to(tmp_path).as_posix())
        return real_listdir(path)

    monkeypatch.setattr("stores.fs.os.listdir", spy)
    assert [b.key for b in store.list(after="f0" * 32)] == ["f0f1" + "00" * 30]
    assert opened == ["chunks", "chunks/f0", "chunks/f0/f0", "chunks/f0/f1"]


# -- full disk -----------------------------------------------------------------------------


def test_a_full_filesystem_raises_storage_full_and_leaves_no_temp(tmpfs: Callable[[str], Path]) -> None:
    root = tmpfs("size=256k")
    store = FilesystemStore(root)
    key = random_key()
    with pytest.raises(StorageFull) as caught:
        store.put(key, os.urandom(1 << 20))
    assert isinstance(caught.value.__cause__, OSError)
    assert all_files(root) == []
    assert not store.exists(key)
    small = random_key()
    store.put(small, b"fits")  # the failed temp file was removed, so space is back
    assert store.get(small) == b"fits"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_out_of_space_errors_from_write_become_storage_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    store = FilesystemStore(tmp_path)

    def write(fd: int, data: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("stores.fs.os.write", write)
    with pytest.raises(StorageFull):
        store.put(random_key(), b"x" * 100)
    assert all_files(tmp_path) == []


def test_other_write_errors_become_store_error_not_storage_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemStore(tmp_path)

    def write(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("stores.fs.os.write", write)
    with pytest.raises(StoreError) as caught:
        store.put(random_key(), b"x")
    assert type(caught.value) is StoreError
    assert caught.value.__cause__.errno == errno.EIO


# -- read-only roots -----------------------------------------------------------------------


def test_a_root_that_cannot_be_created_starts_read_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="stores.fs"):
        store = FilesystemStore(afile / "blobs")
    assert store.capabilities.writable is False
    assert str(afile) in store.capabilities.reason
    assert "read-only" in caplog.text
    with pytest.raises(StoreError):
        store.put(random_key(), b"x")


def test_a_read_only_mount_serves_reads_and_refuses_new_blobs(tmpfs: Callable[[str], Path]) -> None:
    root = tmpfs("size=1m")
    key = random_key()
    FilesystemStore(root).put(key, b"kept")
    subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)

    store = FilesystemStore(root)
    assert store.capabilities.writable is False
    assert store.get(key) == b"kept"
    assert [b.key for b in store.list()] == [key]
    store.put(key, b"kept")  # already there: nothing to write, so no error
    with pytest.raises(StoreError):
        store.put(random_key(), b"new")


# -- fsync policies ------------------------------------------------------------------------


@pytest.mark.parametrize("policy, on_put, on_flush", [
    ("always", True, False),
    ("batch", False, True),
    ("never", False, False),
])
def test_the_fsync_policy_decides_when_fsync_happens(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        policy: str, on_put: bool, on_flush: bool) -> None:
    store = FilesystemStore(tmp_path, fsync=policy)
    calls: list[object] = []
    real_fsync, real_syncfs = os.fsync, fs_mod._syncfs
    monkeypatch.setattr("stores.fs.os.fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr("stores.fs._syncfs", lambda p: (calls.append(p), real_syncfs(p))[1])
    keys = [random_key() for _ in range(3)]
    for k in keys:
        store.put(k, blob_for(k))
    # always: file + its dir + the two new fan-out dirs' parents, per put
    assert bool(calls) is on_put
    calls.clear()
    store.flush(keys)
    # batch: one syncfs of the store's filesystem for the whole batch (files, renames and new
    # fan-out dirs alike); where libc has no syncfs, each file and each dir fsynced once
    assert bool(calls) is on_flush
    if on_flush:
        assert calls == [str(tmp_path / "chunks")] if fs_mod._LIBC_SYNCFS else len(calls) >= 2 * len(keys)
    for k in keys:
        assert store.get(k) == blob_for(k)


def test_concurrent_batch_flushes_share_syncfs_calls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: each flush is covered by a syncfs that started after it was called, and
    concurrent flushes share them (fewer syncfs than flushes, never a flush without one)."""
    if not fs_mod._LIBC_SYNCFS:
        pytest.skip("no syncfs here")
    store = FilesystemStore(tmp_path, fsync="batch")
    started: list[float] = []
    real_syncfs = fs_mod._syncfs

    def slow_syncfs(p: str) -> None:
        started.append(time.monotonic())
        time.sleep(0.02)
        real_syncfs(p)

    monkeypatch.setattr("stores.fs._syncfs", slow_syncfs)
    keys = [random_key() for _ in range(16)]
    for k in keys:
        store.put(k, blob_for(k))

    def flush(k: str) -> float:
        called = time.monotonic()
        store.flush([k])
        return called

    with ThreadPoolExecutor(8) as pool:
        calls = list(pool.map(flush, keys))
    assert 1 <= len(started) < len(keys)
    assert all(any(s >= c for s in started) for c in calls)


@pytest.mark.parametrize("policy", ["batch", "always"])
def test_flush_skips_a_key_deleted_since_its_put_and_syncs_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    store = FilesystemStore(tmp_path, fsync=policy)
    kept, gone = random_key(), random_key()
    for k in (kept, gone):
        store.put(k, blob_for(k))
    store.delete(gone)
    synced: list[str] = []
    real = fs_mod._syncfs
    monkeypatch.setattr(fs_mod, "_syncfs", lambda p: (synced.append(p), real(p))[1])
    store.flush([gone, kept])
    assert bool(synced) is (policy == "batch")
    assert store.get(kept) == blob_for(kept) and not store.exists(gone)


def test_an_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        FilesystemStore(tmp_path, fsync="sometimes")


# -- chosen by configuration ---------------------------------------------------------------


def test_build_store_gives_the_filesystem_store_its_dir_and_policy(tmp_path: Path) -> None:
    from cas_glance.config import Config
    from stores.registry import build_store

    store = build_store(Config(data_dir=tmp_path, fsync="always", file_layout="files"))
    assert isinstance(store, FilesystemStore)
    assert (store.root, store.fsync) == (tmp_path / "blobs", "always")
    other = build_store(Config(data_dir=tmp_path, filesystem_store_datadir=tmp_path / "elsewhere",
                               file_layout="files"))
    assert other.root == tmp_path / "elsewhere"


def test_build_store_gives_the_pack_store_its_direct_io_choice(tmp_path: Path) -> None:
    from cas_glance.config import Config
    from stores.direct import supported
    from stores.pack import PackStore
    from stores.registry import build_store

    off = build_store(Config(data_dir=tmp_path / "a", direct_io="off"))
    auto = build_store(Config(data_dir=tmp_path / "b"))
    assert isinstance(off, PackStore) and isinstance(auto, PackStore)
    assert not off.direct_io
    assert auto.direct_io == supported(str(tmp_path / "b" / "blobs" / "packs"))
    off.close()
    auto.close()
