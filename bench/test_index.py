"""Index transaction rates: pin (one stretch per txn), live lookups, manifest range seeks.

Run:  .venv/bin/pytest bench/test_index.py --benchmark-enable -s
The index is opened with sync=False (fsync="never"), so the figures are LMDB + msgpack costs,
not the disk's fsync latency.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cas_glance import blobfmt
from cas_glance.index import ChunkRef, Index

PARAMS = {"bench": 1}
STRETCH = 128  # ~8 MiB of 64 KiB chunks, what ingest pins per txn
_seq = itertools.count()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    ix = Index(tmp_path / "ix", chunker_params=PARAMS, sync=False)
    yield ix
    ix.close()


def report(benchmark: Any, ops: int, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.mean:
        rate = ops / stats.stats.mean
        benchmark.extra_info["ops/s"] = round(rate)
        print(f"\n{label}: {rate:,.0f} /s")


def test_pin_stretch(benchmark: Any, index: Index) -> None:
    index.create_image({"id": "p", "status": "saving"})

    def pin() -> None:
        k = next(_seq)
        refs = [ChunkRef((k * STRETCH + i) << 16, blobfmt.digest(b"%d" % (k * STRETCH + i)), 1 << 16,
                         40000, 1, True) for i in range(STRETCH)]
        assert index.pin("p", refs) == []
    benchmark(pin)
    report(benchmark, STRETCH, f"pinned chunk refs (stretches of {STRETCH})")


def test_known_chunks_lookup(benchmark: Any, index: Index) -> None:
    index.create_image({"id": "k", "status": "saving"})
    ds = [blobfmt.digest(b"%d" % i) for i in range(4096)]
    index.pin("k", [ChunkRef(i, d, 1, 1, 1, True) for i, d in enumerate(ds)])
    probe = ds[::2] + [blobfmt.digest(b"x%d" % i) for i in range(2048)]  # half hits
    batches = [probe[i:i + 16] for i in range(0, len(probe), 16)]  # 16 = chunks per 1 MiB block
    benchmark(lambda: [index.known_chunks(b) for b in batches])
    report(benchmark, len(probe), "known_chunks lookups (batches of 16)")


def test_manifest_range_seek(benchmark: Any, index: Index) -> None:
    n = 65536  # a 4 GiB image of 64 KiB chunks
    index.create_image({"id": "m", "status": "saving"})
    for s in range(0, n, 4096):
        index.pin("m", [ChunkRef(i << 16, None, 1 << 16) for i in range(s, s + 4096)])
    rng = random.Random(1)
    offsets = [rng.randrange(n << 16) for _ in range(1000)]

    def seek() -> None:
        for off in offsets:
            first = index.manifest_batch("m", off, 16)[0]
            assert first[0] <= off < first[0] + first[2]
    benchmark(seek)
    report(benchmark, len(offsets), "manifest seeks (16 entries each) in a 65,536-entry manifest")
