"""Put/get/flush throughput of the local stores, through the contract's benchmark half.

Run:  .venv/bin/pytest bench/test_stores.py --benchmark-enable
Any backend gets the same numbers by subclassing `tests.stores.contract.StoreBenchmark` with a
`store` fixture (S3 and Swift do it beside their conformance tests). The filesystem runs under
each fsync policy that changes the cost of a write: "batch" (the default) and "always".
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from stores.base import BlobStore
from stores.fs import FilesystemStore
from stores.memory import MemoryStore
from tests.stores.contract import StoreBenchmark


class TestFilesystemBench(StoreBenchmark):
    @pytest.fixture(params=["batch", "always"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
        s = FilesystemStore(tmp_path / "blobs", fsync=request.param)
        yield s
        s.close()


class TestMemoryBench(StoreBenchmark):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = MemoryStore()
        yield s
        s.close()
