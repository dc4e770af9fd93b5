"""StreamChunker cuts exactly like Chunker.chunk_lengths, whatever the feeds.

Concern: the streaming form is what ingest uses; if it cut differently from
the whole-buffer form (or depending on how the network happened to split the
upload), the same image uploaded twice would not deduplicate.
"""

import os
import random
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from chunker import Chunker

SMALL = Chunker(min_size=64, avg_size=256, max_size=1024)
DEFAULT = Chunker()


def stream_chunks(chunker, data, feed_sizes):
    s = chunker.stream()
    chunks = []
    pos = 0
    sizes = iter(feed_sizes)
    while pos < len(data):
        n = next(sizes, len(data) - pos)
        chunks += s.feed(data[pos:pos + n])
        pos += n
    chunks += s.finish()
    return chunks


@settings(max_examples=200, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=12000),
        st.builds(lambda pat, n: pat * n, st.binary(min_size=1, max_size=9), st.integers(0, 1500)),
    ),
    feed_sizes=st.lists(st.integers(0, 3000), max_size=60),
)
def test_stream_equals_whole_buffer(data, feed_sizes):
    chunks = stream_chunks(SMALL, data, feed_sizes)
    assert [len(c) for c in chunks] == SMALL.chunk_lengths(data)
    assert b"".join(chunks) == data
    assert all(type(c) is bytes or (type(c) is memoryview and c.readonly) for c in chunks)


def test_chunks_of_a_bytes_block_are_views_and_of_a_bytearray_copies():
    data = random.Random(5).randbytes(3 << 20)
    shared = DEFAULT.stream().feed(data)
    views = [c for c in shared if type(c) is memoryview]
    # only the chunks cut in the pending buffer (the block's first max_size bytes) are copies
    assert sum(len(c) for c in views) >= len(data) - 2 * DEFAULT.max_size
    assert all(c.obj is data and c.readonly for c in views)
    block = bytearray(data)
    copied = DEFAULT.stream().feed(block)
    block[:] = bytes(len(block))  # the caller reuses its buffer: chunks must not change
    assert [bytes(c) for c in copied] == [bytes(c) for c in shared]
    assert all(type(c) is bytes for c in copied)


@pytest.mark.parametrize("block", [1, 4096, 65536, 262143, 262144, 1 << 20, 3 << 20])
def test_stream_equals_whole_buffer_default_params(block):
    data = random.Random(block).randbytes((3 << 20) + 12345)
    c = Chunker()
    chunks = stream_chunks(c, data, [block] * len(data)) if block > 1 else None
    if block == 1:  # byte-at-a-time on less data, to keep it quick
        data = data[: 600 * 1024]
        chunks = stream_chunks(c, data, [1] * len(data))
    assert [len(x) for x in chunks] == c.chunk_lengths(data)
    assert b"".join(chunks) == data


def test_stream_accepts_any_bytes_like():
    data = random.Random(1).randbytes(5000)
    s = SMALL.stream()
    chunks = s.feed(memoryview(data)[:1000]) + s.feed(bytearray(data[1000:3000]))
    chunks += s.feed(data[3000:]) + s.finish()
    assert b"".join(chunks) == data


def test_stream_memory_bounded():
    """Pending bytes stay below max_size and the buffer never grows, even
    when a fed block is many times max_size."""
    c = Chunker()
    s = c.stream()
    rng = random.Random(7)
    for block in [100_000] * 30 + [5 << 20, 1, 300_000, 3 << 20]:
        s.feed(rng.randbytes(block))
        # Everything settled has been handed out; what is left can still move.
        assert s._end - s._start < c.max_size
        assert len(s._buf) <= 4 * c.max_size
    s.finish()


def test_empty_stream():
    s = SMALL.stream()
    assert s.feed(b"") == []
    assert s.finish() == []


def test_feed_after_finish_raises():
    s = SMALL.stream()
    s.feed(b"x" * 100)
    assert b"".join(s.finish()) == b"x" * 100
    with pytest.raises(ValueError):
        s.feed(b"more")
    with pytest.raises(ValueError):
        s.finish()


def test_threads_cut_independently():
    """The scan runs with the GIL released; results must not interfere."""
    c = Chunker(min_size=1024, avg_size=4096, max_size=16384)
    inputs = [random.Random(i).randbytes(4 << 20) for i in range(4)]
    expected = [c.chunk_lengths(d) for d in inputs]
    results = [None] * 4

    def work(i):
        results[i] = [len(x) for x in stream_chunks(c, inputs[i], [65536] * 100)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_scan_releases_the_gil():
    """Two scans in two threads overlap in time.  Were the GIL held during
    the scan, the second thread could not even enter chunk_lengths until
    the first returned.  Holds on a loaded machine too (the OS interleaves
    the threads), unlike a speed-up measurement."""
    c = Chunker()
    data = os.urandom(48 << 20)
    spans = [None, None]
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        t0 = time.perf_counter()
        c.chunk_lengths(data)
        spans[i] = (t0, time.perf_counter())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = spans
    overlap = min(a1, b1) - max(a0, b0)
    assert overlap > 0.5 * min(a1 - a0, b1 - b0), spans
