"""The BlobStore conformance suite: one set of behaviour tests every backend runs unchanged.

Use it by subclassing `StoreContract` in a test module and providing a `store` fixture that
yields an EMPTY, writable store and closes it afterwards:

    class TestFilesystem(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = FilesystemStore(tmp_path)
            yield s
            s.close()

Invariants checked (see stores/base.py for the contract itself): round trips of any size,
idempotent put and delete, BlobNotFound for missing keys, sorted and resumable listings,
ValueError for keys that are not 64 lower-case hex digits, thread safety, close twice.

`StoreBenchmark` (at the end) is the benchmark half: the same put/get/flush timings for any
backend, subclassed with the same `store` fixture (see bench/test_stores.py).

The suite is sized for remote backends (~5-10 ms per request on loopback): one class run stays
well under 2000 requests. Backends tune `many_keys` (e.g. above their listing page size) and
`threads` as class attributes, never by editing a test.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from stores.base import BlobInfo, BlobStore
from stores.errors import BlobNotFound

MiB = 1 << 20

# Not blob keys: too short, upper case, not hex, one digit too many, a path escape.
INVALID_KEYS = [
    "",
    "abc",
    "A" * 64,
    "g" * 64,
    "0" * 65,
    "../" + "0" * 61,
    "0" * 63 + "\n",
]


def random_key() -> str:
    """A fresh 64-hex key; random keys spread over the whole fan-out."""
    return os.urandom(32).hex()


def random_keys(n: int) -> list[str]:
    return [random_key() for _ in range(n)]


def open_file_store(cls: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Body of a file store fixture parametrized with the fsync policy: open it under
    `tmp_path/blobs`, yield it, close it."""
    store = cls(tmp_path / "blobs", fsync=request.param)
    yield store
    store.close()


def blob_for(key: str, size: int = 100) -> bytes:
    """Deterministic content per key, so a mixed-up key shows up as wrong bytes."""
    seed = bytes.fromhex(key)
    return (seed * (size // len(seed) + 1))[:size]


class StoreContract:
    """Behaviour every BlobStore must show. Subclasses provide the `store` fixture."""

    # Keys put by the listing-at-scale test; set above a backend's page size to cross a page.
    many_keys: int = 300
    # Worker threads of the concurrency test (the engine drives stores from a thread pool).
    threads: int = 16
    # How far a reported mtime may be from this machine's clock (remote servers drift).
    mtime_slack: float = 300.0
    # Whether the store says each call is a network round trip (the engine batches by it).
    remote: bool = False

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("a backend test class must provide a `store` fixture")

    # -- protocol surface ----------------------------------------------------------------

    def test_store_implements_the_protocol(self, store: BlobStore) -> None:
        assert isinstance(store, BlobStore)
        assert isinstance(store.name, str) and store.name
        assert store.capabilities.writable, store.capabilities.reason
        assert store.capabilities.remote is self.remote

    # -- put / get -----------------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, MiB], ids=["empty", "1B", "1MiB"])
    def test_get_returns_exactly_what_was_put(self, store: BlobStore, size: int) -> None:
        key = random_key()
        data = os.urandom(size)
        store.put(key, data)
        got = store.get(key)
        assert type(got) is bytes
        assert got == data

    def test_put_of_an_existing_key_is_harmless(self, store: BlobStore) -> None:
        key = random_key()
        store.put(key, blob_for(key))
        store.put(key, blob_for(key))
        assert store.get(key) == blob_for(key)
        assert [i.key for i in store.list()] == [key]

    def test_get_of_a_missing_key_raises_blob_not_found(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            store.get(random_key())

    def test_keys_do_not_leak_into_each_other(self, store: BlobStore) -> None:
        keys = random_keys(5)
        for k in keys:
            store.put(k, blob_for(k, 257))
        for k in keys:
            assert store.get(k) == blob_for(k, 257)

    # -- stat / exists -------------------------------------------------------------------

    def test_stat_reports_size_and_a_recent_mtime(self, store: BlobStore) -> None:
        key = random_key()
        store.put(key, blob_for(key, 1234))
        info = store.stat(key)
        assert isinstance(info, BlobInfo)
        assert (info.key, info.size) == (key, 1234)
        assert abs(info.mtime - time.time()) < self.mtime_slack

    def test_stat_of_an_empty_blob_reports_size_zero(self, store: BlobStore) -> None:
        key = random_key()
        store.put(key, b"")
        assert store.stat(key).size == 0

    def test_stat_of_a_missing_key_raises_blob_not_found(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            store.stat(random_key())

    def test_exists_follows_put_and_delete(self, store: BlobStore) -> None:
        key = random_key()
        assert store.exists(key) is False
        store.put(key, b"x")
        assert store.exists(key) is True
        store.delete(key)
        assert store.exists(key) is False

    # -- delete --------------------------------------------------------------------------

    def test_delete_removes_the_blob(self, store: BlobStore) -> None:
        key, other = random_keys(2)
        store.put(key, b"a")
        store.put(other, b"b")
        store.delete(key)
        with pytest.raises(BlobNotFound):
            store.get(key)
        with pytest.raises(BlobNotFound):
            store.stat(key)
        assert store.get(other) == b"b"
        assert [i.key for i in store.list()] == [other]

    def test_delete_of_a_missing_blob_is_not_an_error(self, store: BlobStore) -> None:
        store.delete(random_key())

    def test_delete_twice_is_not_an_error(self, store: BlobStore) -> None:
        key = random_key()
        store.put(key, b"a")
        store.delete(key)
        store.delete(key)

    def test_put_after_delete_brings_the_blob_back(self, store: BlobStore) -> None:
        key = random_key()
        store.put(key, b"one")
        store.delete(key)
        store.put(key, b"one")
        assert store.get(key) == b"one"

    # -- list ----------------------------------------------------------------------------

    def test_list_of_an_empty_store_is_empty(self, store: BlobStore) -> None:
        assert list(store.list()) == []
        assert list(store.list(after=random_key())) == []

    def test_list_is_sorted_and_reports_sizes(self, store: BlobStore) -> None:
        keys = random_keys(20)
        for n, k in enumerate(keys):
            store.put(k, blob_for(k, n))
        infos = list(store.list())
        assert [i.key for i in infos] == sorted(keys)
        sizes = {k: n for n, k in enumerate(keys)}
        for info in infos:
            assert isinstance(info, BlobInfo)
            assert info.size == sizes[info.key]
            assert abs(info.mtime - time.time()) < self.mtime_slack

    def test_list_after_a_key_resumes_strictly_after_it(self, store: BlobStore) -> None:
        keys = sorted(random_keys(20))
        for k in keys:
            store.put(k, b"x")
        for i in (0, 7, 19):
            assert [b.key for b in store.list(after=keys[i])] == keys[i + 1:]

    def test_list_after_a_string_that_is_not_a_key(self, store: BlobStore) -> None:
        keys = sorted(["00" * 32, "0f" + "00" * 31, "80" * 32, "8f" + "ff" * 31, "ff" * 32])
        for k in keys:
            store.put(k, b"x")

        def after(a: str) -> list[str]:
            return [b.key for b in store.list(after=a)]

        assert after("") == keys
        assert after("7" + "f" * 63) == keys[2:]  # a 64-hex non-key between two keys
        assert after("8") == keys[2:]  # a bare prefix sorts before every key under it
        assert after("80" * 32 + "0") == keys[3:]  # longer than a key: sorts after "80..80"
        assert after("0f") == keys[1:]
        assert after("ff" * 32) == []
        assert after("g") == []  # sorts after every hex digit

    def test_list_at_scale_is_complete_sorted_and_resumable(self, store: BlobStore) -> None:
        keys = sorted(random_keys(self.many_keys))
        for k in keys:
            store.put(k, b"")
        assert [b.key for b in store.list()] == keys
        for i in (0, len(keys) // 3, len(keys) - 2):
            assert [b.key for b in store.list(after=keys[i])] == keys[i + 1:]

    def test_a_listing_can_be_abandoned_early(self, store: BlobStore) -> None:
        keys = sorted(random_keys(5))
        for k in keys:
            store.put(k, b"")
        it = iter(store.list())
        assert next(it).key == keys[0]
        del it  # a generator closed mid-way must not break the store
        assert store.exists(keys[1])

    # -- keys ----------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", INVALID_KEYS, ids=range(len(INVALID_KEYS)))
    def test_an_invalid_key_raises_value_error(self, store: BlobStore, bad: str) -> None:
        calls = [
            lambda: store.put(bad, b"x"),
            lambda: store.get(bad),
            lambda: store.stat(bad),
            lambda: store.exists(bad),
            lambda: store.delete(bad),
            lambda: store.flush([bad]),
        ]
        for call in calls:
            with pytest.raises(ValueError):
                call()
        assert list(store.list()) == []

    # -- flush / close -------------------------------------------------------------------

    def test_flush_of_put_keys_keeps_them_readable(self, store: BlobStore) -> None:
        keys = random_keys(4)
        for k in keys:
            store.put(k, blob_for(k))
        store.flush(keys)
        store.flush(iter(keys))  # any iterable, and twice
        store.flush([])
        for k in keys:
            assert store.get(k) == blob_for(k)

    def test_close_twice_is_safe(self, store: BlobStore) -> None:
        store.put(random_key(), b"x")
        store.close()
        store.close()

    # -- concurrency ---------------------------------------------------------------------

    def test_concurrent_puts_and_gets_from_many_threads(self, store: BlobStore) -> None:
        shared = random_keys(4)  # every thread puts these too: racing writers of one key
        per_thread = [random_keys(4) for _ in range(self.threads)]
        start = threading.Barrier(self.threads)

        def work(own: list[str]) -> None:
            start.wait()
            for k in own + shared:
                store.put(k, blob_for(k, 4096))
            for k in own + shared:
                assert store.get(k) == blob_for(k, 4096)

        with ThreadPoolExecutor(self.threads) as pool:
            for f in [pool.submit(work, own) for own in per_thread]:
                f.result()
        expected = sorted({k for own in per_thread for k in own} | set(shared))
        assert [b.key for b in store.list()] == expected


class StoreBenchmark:
    """The benchmark half of the contract: the same timings on every backend.

    Subclass it with the same `store` fixture as the conformance class and run with
    `pytest <file> --benchmark-enable`; without that flag (the project default) each bench
    runs once as a smoke test. Results carry ops/s and MB/s in `extra_info`, and every bench
    checks what the store returned, so a fast wrong answer cannot pass.
    """

    blob_size: int = 64 * 1024
    rounds: int = 200  # remote backends may lower this (each round is one request)
    batch: int = 16  # blobs per put+flush round (the engine flushes in batches)

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("a backend benchmark class must provide a `store` fixture")

    def _report(self, benchmark: BenchmarkFixture, ops_per_round: int) -> None:
        if benchmark.stats is None:  # benchmarking disabled: nothing was timed
            return
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["ops_per_s"] = round(ops_per_round / mean, 1)
        benchmark.extra_info["MB_per_s"] = round(ops_per_round * self.blob_size / mean / 1e6, 1)

    def test_bench_put(self, store: BlobStore, benchmark: BenchmarkFixture) -> None:
        data = os.urandom(self.blob_size)
        keys: list[str] = []

        def fresh_key() -> tuple[tuple[str, bytes], dict[str, object]]:
            keys.append(random_key())  # a new key per round: a repeated put is a no-op
            return (keys[-1], data), {}

        benchmark.pedantic(store.put, setup=fresh_key, rounds=self.rounds)
        self._report(benchmark, 1)
        assert store.get(keys[-1]) == data
        assert store.stat(keys[0]).size == self.blob_size

    def test_bench_get(self, store: BlobStore, benchmark: BenchmarkFixture) -> None:
        blobs = {k: os.urandom(self.blob_size) for k in random_keys(8)}
        for k, v in blobs.items():
            store.put(k, v)
        order = list(blobs) * (self.rounds // len(blobs) + 1)
        asked: list[str] = []

        def next_key() -> tuple[tuple[str], dict[str, object]]:
            asked.append(order[len(asked)])
            return (asked[-1],), {}

        got = benchmark.pedantic(store.get, setup=next_key, rounds=self.rounds)
        self._report(benchmark, 1)
        assert got == blobs[asked[-1]]

    def test_bench_put_and_flush_a_batch(self, store: BlobStore,
                                         benchmark: BenchmarkFixture) -> None:
        data = os.urandom(self.blob_size)
        batches: list[list[str]] = []

        def fresh_batch() -> tuple[tuple[list[str]], dict[str, object]]:
            batches.append(random_keys(self.batch))
            return (batches[-1],), {}

        def put_and_flush(keys: list[str]) -> None:
            for k in keys:
                store.put(k, data)
            store.flush(keys)

        benchmark.pedantic(put_and_flush, setup=fresh_batch,
                           rounds=max(1, self.rounds // self.batch))
        self._report(benchmark, self.batch)
        assert all(store.get(k) == data for k in batches[-1])
