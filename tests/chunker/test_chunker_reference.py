"""The native kernel cuts exactly where chunker.reference (the spec) cuts.

Concern: equivalence of chunker._fastcdc and chunker.reference on every kind
of input that behaves differently under a gear hash: random bytes, all
zeros (constant fingerprint), short repeated patterns and text, at tiny and
empty sizes too.  Hypothesis uses small parameters so the pure-Python
reference stays fast; a few default-parameter cases run on ~1-2 MiB.
"""

import random

import pytest
from hypothesis import given, settings, strategies as st

from chunker import Chunker, _fastcdc, reference

SMALL = dict(min_size=64, avg_size=256, max_size=1024)


@st.composite
def small_params(draw):
    """Valid small parameter triples, including min == avg and avg == max."""
    avg = 2 ** draw(st.integers(6, 10))
    min_size = draw(st.integers(64, avg))
    max_size = draw(st.integers(avg, 4 * avg))
    return dict(min_size=min_size, avg_size=avg, max_size=max_size)


data_kinds = st.one_of(
    st.binary(max_size=20000),
    # Hypothesis keeps drawn binaries short; seeded randbytes reach many chunks.
    st.builds(lambda seed, n: random.Random(seed).randbytes(n), st.integers(0, 2**32), st.integers(0, 60000)),
    st.integers(0, 20000).map(bytes),  # all zeros
    st.builds(lambda pat, n: pat * n, st.binary(min_size=1, max_size=40), st.integers(0, 800)),
    st.text(max_size=4000).map(lambda s: s.encode("utf-8")),
)


def check_same(data, params):
    native = Chunker(**params).chunk_lengths(data)
    assert native == reference.chunk_lengths(data, **params)
    assert sum(native) == len(data)


@settings(max_examples=300, deadline=None)
@given(data=data_kinds)
def test_native_matches_reference_small_params(data):
    check_same(data, SMALL)


@settings(max_examples=150, deadline=None)
@given(data=data_kinds, params=small_params())
def test_native_matches_reference_any_small_params(data, params):
    check_same(data, params)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 1023, 1024, 1025])
def test_tiny_inputs(size):
    check_same(random.Random(size).randbytes(size), SMALL)


@pytest.mark.parametrize(
    "kind",
    ["random", "zeros", "repetitive", "text"],
)
def test_native_matches_reference_default_params(kind):
    rng = random.Random(kind)
    size = 1536 * 1024 + 17
    if kind == "random":
        data = rng.randbytes(size)
    elif kind == "zeros":
        data = bytes(size)
    elif kind == "repetitive":
        data = (rng.randbytes(4093) * (size // 4093 + 1))[:size]
    else:
        words = ["glance", "image", "chunk", "qcow2", "raw", "the", "of", "\n"]
        data = " ".join(rng.choice(words) for _ in range(size // 4)).encode()[:size]
    check_same(data, {})


def test_gear_table_in_c_equals_reference():
    assert _fastcdc.gear_table() == reference.GEAR
    assert len(reference.GEAR) == 256


def test_gear_table_is_the_documented_splitmix64_output():
    assert list(reference.GEAR) == reference.splitmix64(reference.GEAR_SEED, 256)


def test_masks_are_top_bits_two_either_side_of_avg():
    mask_s, mask_l = reference.masks(65536)
    assert mask_s == ((1 << 18) - 1) << 46
    assert mask_l == ((1 << 14) - 1) << 50
