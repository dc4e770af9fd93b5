"""blobfmt encode/decode throughput over 64 KiB chunks, random (stored raw) and text-like.

Run:  .venv/bin/pytest bench/test_blobfmt.py --benchmark-enable -s
Decode includes the BLAKE3 verification, as every read does.
"""
from __future__ import annotations

from typing import Any

import pytest

from cas_glance import blobfmt
from tests.engine.engine_helpers import random_bytes, text_like

CHUNK = 64 << 10
N = 128  # 8 MiB per round


def chunks(kind: str) -> list[bytes]:
    make = random_bytes if kind == "random" else text_like
    return [make(CHUNK, i) for i in range(N)]


def report(benchmark: Any, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.mean:
        mb_s = N * CHUNK / stats.stats.mean / 1e6
        benchmark.extra_info["MB/s"] = round(mb_s, 1)
        print(f"\n{label}: {mb_s:.0f} MB/s of raw chunk data")


@pytest.mark.parametrize("kind", ["random", "text"])
def test_encode(benchmark: Any, kind: str) -> None:
    raw = chunks(kind)
    blobs = benchmark(lambda: [blobfmt.encode(c, 3) for c in raw])
    assert [blobfmt.codec_of(b) for b in blobs[:1]] == [blobfmt.RAW if kind == "random" else blobfmt.ZSTD]
    report(benchmark, f"encode {kind}")


@pytest.mark.parametrize("kind", ["random", "text"])
def test_encode_parts(benchmark: Any, kind: str) -> None:
    """What the ingest calls: header and payload apart (a random chunk is not copied)."""
    raw = chunks(kind)
    parts = benchmark(lambda: [blobfmt.encode_parts(c, 3) for c in raw])
    assert all(header + payload == blobfmt.encode(c, 3) for (header, payload), c in zip(parts, raw))
    if kind == "random":
        assert all(payload is c for (_header, payload), c in zip(parts, raw))
    report(benchmark, f"encode_parts {kind}")


@pytest.mark.parametrize("kind", ["random", "text"])
def test_decode_verified(benchmark: Any, kind: str) -> None:
    raw = chunks(kind)
    pairs = [(blobfmt.encode(c, 3), blobfmt.digest(c)) for c in raw]
    out = benchmark(lambda: [blobfmt.decode(b, d) for b, d in pairs])
    assert out == raw
    report(benchmark, f"decode+verify {kind}")


def test_digest(benchmark: Any) -> None:
    raw = chunks("random")
    benchmark(lambda: [blobfmt.digest(c) for c in raw])
    report(benchmark, "blake3 digest")
