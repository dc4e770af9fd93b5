"""Chunk-size bounds, content-defined behaviour, parameters, and the golden cuts.

Concern: the properties dedup relies on.  The golden test pins the exact cut
points of a seeded input: if it fails, cuts moved, and moved cuts silently
end deduplication between every image already stored and every new upload.
Do not "fix" it by updating the numbers unless the cut rule is deliberately
changed together with ALGORITHM / params() and a migration plan.
"""

import hashlib
import random

import pytest
from hypothesis import given, settings, strategies as st

from chunker import ALGORITHM, Chunker


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=30000), avg_exp=st.integers(6, 11))
def test_bounds_and_concatenation(data, avg_exp):
    avg = 2 ** avg_exp
    c = Chunker(min_size=64, avg_size=avg, max_size=4 * avg)
    lengths = c.chunk_lengths(data)
    assert sum(lengths) == len(data)
    assert all(0 < n <= c.max_size for n in lengths)
    assert all(n > c.min_size for n in lengths[:-1])


def test_bounds_default_params_on_zeros_and_random():
    c = Chunker()
    for data in (bytes(5 << 20), random.Random(3).randbytes(5 << 20)):
        lengths = c.chunk_lengths(data)
        assert sum(lengths) == len(data)
        assert max(lengths) <= c.max_size
        assert min(lengths[:-1]) > c.min_size


def test_golden_cut_points():
    # Changing these cuts silently ends dedup for every stored image.
    data = random.Random(20201).randbytes(8 << 20)
    lengths = Chunker().chunk_lengths(data)
    offsets, pos = [], 0
    for n in lengths:
        pos += n
        offsets.append(pos)
    digest = hashlib.sha256(b"".join(o.to_bytes(8, "little") for o in offsets)).hexdigest()
    assert len(lengths) == GOLDEN_COUNT
    assert lengths[:5] == GOLDEN_FIRST
    assert digest == GOLDEN_SHA256


def test_golden_params():
    # params() goes into the index; this dict is what existing indexes hold.
    assert Chunker().params() == GOLDEN_PARAMS
    assert ALGORITHM == "fastcdc-2020"


def test_params_change_with_sizes():
    base = Chunker().params()
    assert Chunker(8192, 65536, 262144).params() != base
    assert Chunker(16384, 32768, 262144).params() != base
    assert Chunker(16384, 65536, 1 << 20).params() != base


def _digests(data, lengths):
    out, pos = set(), 0
    for n in lengths:
        out.add(hashlib.blake2b(data[pos:pos + n], digest_size=16).digest())
        pos += n
    return out


def test_insertion_near_start_keeps_most_chunks():
    c = Chunker()
    data = random.Random(128).randbytes(128 << 20)
    edited = data[:1000] + b"\x42" + data[1000:]
    before = _digests(data, c.chunk_lengths(data))
    after = _digests(edited, c.chunk_lengths(edited))
    assert len(before & after) >= 0.95 * len(before)


def test_mean_chunk_size_near_avg():
    c = Chunker()
    data = random.Random(64).randbytes(64 << 20)
    lengths = c.chunk_lengths(data)
    mean = len(data) / len(lengths)
    assert 0.8 * c.avg_size <= mean <= 1.2 * c.avg_size, mean


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(min_size=32), "min_size"),
        (dict(max_size=128 << 20), "max_size"),
        (dict(avg_size=65535), "power of two"),
        (dict(avg_size=100000, max_size=1 << 20), "power of two"),
        (dict(min_size=131072), "min_size"),
        (dict(avg_size=1 << 20), "max_size"),
        (dict(min_size=16384.0), "min_size"),
        (dict(avg_size=True), "avg_size"),
        (dict(min_size=-1), "min_size"),
    ],
)
def test_bad_params_raise_value_error(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Chunker(**kwargs)


def test_edge_params_accepted():
    data = random.Random(5).randbytes(50000)
    for c in (Chunker(64, 64, 64), Chunker(64, 1024, 1024), Chunker(1024, 1024, 4096),
              Chunker(1 << 20, 1 << 26, 1 << 26)):
        assert sum(c.chunk_lengths(data)) == len(data)
    assert Chunker(64, 64, 64).chunk_lengths(b"a" * 200) == [64, 64, 64, 8]


# Pinned from the native kernel and cross-checked once against chunker.reference.
GOLDEN_COUNT = 110
GOLDEN_FIRST = [95480, 73544, 65679, 80571, 83399]
GOLDEN_SHA256 = "d1f9f7b32b1a6219dd58829d3c9817003ad27a1c925b8dedc1941ac160e1de0f"
GOLDEN_PARAMS = {
    "algorithm": "fastcdc-2020",
    "min_size": 16384,
    "avg_size": 65536,
    "max_size": 262144,
    "gear": "f6715f86013ba2ae",
}
