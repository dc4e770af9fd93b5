"""Collection of a big index: time and peak Python memory of `gc.collect` over N chunk entries.

Run:  .venv/bin/pytest bench/test_gc.py --benchmark-enable -s        (N = 1,000,000)
Without --benchmark-enable each case runs once on N = 10,000 as a smoke test.
CAS_BENCH_CHUNKS sets N. The index is populated through its own methods in big txns
(pin 100k entries per txn into one `saving` image, then abort or keep), with a store whose
delete is free (DiscardStore), so the figures are the collector's own costs: the index scan,
the two txns per batch and the planning. Cases:
* all_zero   N entries, all at refcount 0: everything is collected;
* few_zero   N entries, 1% at refcount 0: the scan dominates.
Every run checks its output (entries left == entries referenced).
"""
from __future__ import annotations

import itertools
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cas_glance import gc
from cas_glance.index import ChunkRef, Index
from stores.base import BlobInfo, Capabilities

PIN_TXN = 100_000
_ids = itertools.count()


class DiscardStore:
    """A store that holds nothing and deletes for free (the index is what is measured)."""

    name = "discard"
    capabilities = Capabilities()

    def delete(self, key: str) -> None:
        pass

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        return iter(())

    def close(self) -> None:
        pass


def _enabled(config: Any) -> bool:
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


@pytest.fixture
def n_chunks(request: Any) -> int:
    return int(os.environ.get("CAS_BENCH_CHUNKS", 1_000_000 if _enabled(request.config) else 10_000))


def _image(index: Index, n: int, start: int) -> str:
    """A saving image pinning n fresh chunk entries (digests start..start+n)."""
    iid = f"bench-{next(_ids)}"
    index.create_image({"id": iid, "status": "saving"})
    for lo in range(start, start + n, PIN_TXN):
        refs = [ChunkRef(i - start, f"{i + 1:064x}", 1, 100, 0, True) for i in range(lo, min(lo + PIN_TXN, start + n))]
        assert index.pin(iid, refs) == []
    return iid


def populate(path: Path, n: int, zero: int) -> Index:
    """n entries of which `zero` are at refcount 0."""
    index = Index(path, chunker_params={"bench": 1}, sync=False, map_size=1 << 32)
    if n - zero:
        _image(index, n - zero, 0)
    if zero:
        dropped = _image(index, zero, n - zero)
        index.abort_upload(dropped, lambda r: {**r, "status": "queued"})
    return index


def _collect(index: Index) -> gc.GcReport:
    return gc.collect(index, DiscardStore(), grace=0, sweep=False)


@pytest.mark.parametrize("zero_share", [1.0, 0.01], ids=["all_zero", "few_zero"])
def test_collect(benchmark: Any, tmp_path: Path, n_chunks: int, zero_share: float) -> None:
    zero = int(n_chunks * zero_share)
    state: dict[str, Any] = {}

    def setup() -> tuple[tuple[Index], dict]:
        state["index"] = populate(tmp_path / f"ix-{next(_ids)}", n_chunks, zero)
        return (state["index"],), {}

    report = benchmark.pedantic(_collect, setup=setup, rounds=1, iterations=1)
    index = state["index"]
    assert report.entries_dropped == zero
    assert sum(1 for _ in index.iter_chunks()) == n_chunks - zero
    secs = benchmark.stats.stats.min if benchmark.enabled else float("nan")
    benchmark.extra_info.update(entries=n_chunks, collected=zero, entries_per_s=round(n_chunks / secs) if benchmark.enabled else 0)
    print(f"\ncollect {n_chunks:,} entries ({zero:,} at zero): {secs:.2f} s")
    index.close()


@pytest.mark.parametrize("zero_share", [1.0, 0.01], ids=["all_zero", "few_zero"])
def test_collect_peak_memory(tmp_path: Path, n_chunks: int, zero_share: float) -> None:
    """Peak Python allocations during one collection (tracemalloc; slower than the timing)."""
    zero = int(n_chunks * zero_share)
    index = populate(tmp_path / "ix", n_chunks, zero)
    tracemalloc.start()
    t0 = time.perf_counter()
    report = _collect(index)
    elapsed = time.perf_counter() - t0
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.entries_dropped == zero
    print(f"\ncollect {n_chunks:,} entries ({zero:,} at zero): peak {peak / 2**20:.1f} MiB "
          f"(traced run {elapsed:.1f} s)")
    if n_chunks >= 100_000:
        assert peak < 64 << 20  # bounded by the batch, not by the index size
    index.close()
