"""Put/get/flush throughput of the local stores, through the contract's benchmark half.

Run:  .venv/bin/pytest bench/test_stores.py --benchmark-enable
Any backend gets the same numbers by subclassing `tests.stores.contract.StoreBenchmark` with a
`store` fixture (S3 and Swift do it beside their conformance tests). The file stores (pack files,
the default, and one file per blob) run under each fsync policy that changes the cost of a
write: "batch" (the default) and "always". The pack store also times `put_many` of a store
job's 16 blobs given as header and payload, as the ingest writes them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_benchmark.fixture import BenchmarkFixture

from cas_glance import blobfmt
from stores.base import BlobStore
from stores.fs import FilesystemStore
from stores.memory import MemoryStore
from stores.pack import PackStore
from tests.stores.contract import StoreBenchmark, open_file_store, random_keys


class TestPackBench(StoreBenchmark):
    @pytest.fixture(params=["batch", "always"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PackStore]:
        yield from open_file_store(PackStore, request, tmp_path)

    def test_bench_put_many_of_parts(self, store: PackStore, benchmark: BenchmarkFixture) -> None:
        raw = os.urandom(self.blob_size)
        parts = blobfmt.encode_parts(raw, 3)  # random: header + the chunk itself
        jobs: list[list[str]] = []

        def fresh_job() -> tuple[tuple[list[tuple[str, Any]]], dict[str, object]]:
            jobs.append(random_keys(self.batch))
            return ([(k, parts) for k in jobs[-1]],), {}

        benchmark.pedantic(store.put_many, setup=fresh_job, rounds=self.rounds)
        self._report(benchmark, self.batch)
        store.flush(jobs[-1])
        assert all(blobfmt.decode(store.get(k), blobfmt.digest(raw)) == raw for k in jobs[-1])

    @pytest.mark.parametrize("how", ["get_many", "get_each"])
    def test_bench_read_a_reader_group(self, store: PackStore, benchmark: BenchmarkFixture,
                                       how: str) -> None:
        """A reader's 4 MiB group: get_many (one LMDB txn, blobs close together in one read)
        against a get per blob, as the reader did before get_many."""
        blobs = {k: os.urandom(self.blob_size) for k in random_keys(64)}
        store.put_many([(k, (b,)) for k, b in blobs.items()])
        store.flush(list(blobs))
        keys = list(blobs)
        read = ((lambda: [bytes(b) for b in store.get_many(keys)]) if how == "get_many"
                else (lambda: [store.get(k) for k in keys]))
        got = benchmark.pedantic(read, rounds=self.rounds // 4)
        self._report(benchmark, len(keys))
        assert got == list(blobs.values())


class TestFilesystemBench(StoreBenchmark):
    @pytest.fixture(params=["batch", "always"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
        yield from open_file_store(FilesystemStore, request, tmp_path)


class TestMemoryBench(StoreBenchmark):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = MemoryStore()
        yield s
        s.close()
