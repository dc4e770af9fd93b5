"""The benchmark's data generators: random streams never dedup, the series is deterministic
and each snapshot differs from its predecessor by a few percent; the order statistics are
nearest-rank.
"""
from __future__ import annotations

import hashlib
from itertools import pairwise

from bench.e2e.data import RandomSource, SeriesSpec, snapshot_series
from bench.e2e.figures import median, percentile
from chunker import Chunker


def _chunk_digests(data: bytes) -> list[bytes]:
    view, pos, out = memoryview(data), 0, []
    for length in Chunker().chunk_lengths(data):
        out.append(hashlib.sha256(view[pos:pos + length]).digest())
        pos += length
    return out


def test_random_streams_have_no_duplicate_chunks_within_or_across_streams() -> None:
    src = RandomSource(pool_size=2 << 20)  # a small pool repeats often: stamps must still win
    data = b"".join(src.blocks(1, 12 << 20)) + b"".join(src.blocks(2, 4 << 20))
    digests = _chunk_digests(data)
    assert len(set(digests)) == len(digests)


def test_random_stream_is_reproducible_for_its_md5() -> None:
    src = RandomSource(pool_size=1 << 20)
    whole = b"".join(src.blocks(5, (3 << 20) + 123))
    assert len(whole) == (3 << 20) + 123
    assert src.md5(5, len(whole)) == hashlib.md5(whole).hexdigest()


def test_snapshot_series_is_deterministic_for_a_seed() -> None:
    spec = SeriesSpec(seed=3, base_size=4 << 20, snapshots=2)
    first = [hashlib.sha256(d).hexdigest() for _, d in snapshot_series(spec)]
    again = [hashlib.sha256(d).hexdigest() for _, d in snapshot_series(spec)]
    assert first == again and len(set(first)) == 3


def test_each_snapshot_shares_most_chunks_with_its_predecessor() -> None:
    spec = SeriesSpec(seed=11, base_size=16 << 20, snapshots=3, change=0.02)
    images = [d for _, d in snapshot_series(spec)]
    for prev, cur in pairwise(images):
        before, after = set(_chunk_digests(prev)), _chunk_digests(cur)
        shared = sum(1 for d in after if d in before) / len(after)
        assert 0.6 < shared < 0.995
        assert abs(len(cur) - len(prev)) < 0.05 * len(prev)


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0 and median([3, 1, 2]) == 2
