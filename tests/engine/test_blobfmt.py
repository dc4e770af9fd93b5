"""blobfmt: the compressibility sample, and decoding blobs read as views of a larger buffer."""
from __future__ import annotations

import os

import pytest

from cas_glance import blobfmt
from cas_glance.errors import CorruptBlob

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(1500))[:65536]
RANDOM = os.urandom(65536)


def in_read_buffer(blob: bytes) -> memoryview:
    """What PackStore.get_many yields: a view of the blob inside a larger read buffer."""
    buf = b"\xee" * 100 + blob + b"\xee" * 100
    return memoryview(buf)[100:100 + len(blob)]


def test_incompressible_chunks_are_stored_raw_and_compressible_ones_zstd() -> None:
    assert blobfmt.codec_of(blobfmt.encode(RANDOM)) == blobfmt.RAW
    assert blobfmt.codec_of(blobfmt.encode(TEXT)) == blobfmt.ZSTD
    assert len(blobfmt.encode(TEXT)) < len(TEXT) // 4
    # a chunk whose sampled windows are text is tried, whatever lies between them
    mixed = TEXT[:8192] + RANDOM[:16384] + TEXT[8192:16384] + RANDOM[:24576] + TEXT[16384:24576]
    assert blobfmt.codec_of(blobfmt.encode(mixed)) == blobfmt.ZSTD


@pytest.mark.parametrize("raw", [RANDOM, TEXT, b"x"], ids=["raw-codec", "zstd", "tiny"])
def test_decode_view_of_a_view_gives_the_verified_chunk(raw: bytes) -> None:
    assert bytes(blobfmt.decode_view(in_read_buffer(blobfmt.encode(raw)), blobfmt.digest(raw))) == raw


@pytest.mark.parametrize("raw", [RANDOM, TEXT], ids=["raw-codec", "zstd"])
def test_decode_view_refuses_damage(raw: bytes) -> None:
    digest = blobfmt.digest(raw)
    blob = bytearray(blobfmt.encode(raw))
    blob[-1] ^= 0xFF
    with pytest.raises(CorruptBlob):
        blobfmt.decode_view(in_read_buffer(bytes(blob)), digest)
    with pytest.raises(CorruptBlob):  # cut short
        blobfmt.decode_view(in_read_buffer(blobfmt.encode(raw)[:-10]), digest)
    with pytest.raises(CorruptBlob):  # another chunk's blob
        blobfmt.decode_view(in_read_buffer(blobfmt.encode(raw[:-1])), digest)
    with pytest.raises(CorruptBlob):  # shorter than a header
        blobfmt.decode_view(in_read_buffer(b"CASB"), digest)
