"""blobfmt: the compressibility sample, and scatter reads finished by decode_into."""
from __future__ import annotations

import os

import pytest

from cas_glance import blobfmt
from cas_glance.errors import CorruptBlob

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(1500))[:65536]
RANDOM = os.urandom(65536)


def scatter(blob: bytes, length: int) -> tuple[bytearray, memoryview, int]:
    """What PackStore.get_into leaves behind: the header aside, the rest where the chunk goes."""
    head, body = bytearray(blobfmt.HEADER_SIZE), memoryview(bytearray(length))
    head[:] = blob[:blobfmt.HEADER_SIZE].ljust(blobfmt.HEADER_SIZE, b"\0")
    rest = blob[blobfmt.HEADER_SIZE:blobfmt.HEADER_SIZE + length]
    body[:len(rest)] = rest
    return head, body, len(blob)


def test_incompressible_chunks_are_stored_raw_and_compressible_ones_zstd() -> None:
    assert blobfmt.codec_of(blobfmt.encode(RANDOM)) == blobfmt.RAW
    assert blobfmt.codec_of(blobfmt.encode(TEXT)) == blobfmt.ZSTD
    assert len(blobfmt.encode(TEXT)) < len(TEXT) // 4
    # a chunk whose sampled windows are text is tried, whatever lies between them
    mixed = TEXT[:8192] + RANDOM[:16384] + TEXT[8192:16384] + RANDOM[:24576] + TEXT[16384:24576]
    assert blobfmt.codec_of(blobfmt.encode(mixed)) == blobfmt.ZSTD


@pytest.mark.parametrize("raw", [RANDOM, TEXT, b"x"], ids=["raw-codec", "zstd", "tiny"])
def test_decode_into_leaves_the_verified_chunk_in_place(raw: bytes) -> None:
    head, body, size = scatter(blobfmt.encode(raw), len(raw))
    blobfmt.decode_into(head, body, size, blobfmt.digest(raw))
    assert bytes(body) == raw


@pytest.mark.parametrize("raw", [RANDOM, TEXT], ids=["raw-codec", "zstd"])
def test_decode_into_refuses_damage(raw: bytes) -> None:
    digest = blobfmt.digest(raw)
    blob = bytearray(blobfmt.encode(raw))
    blob[-1] ^= 0xFF
    with pytest.raises(CorruptBlob):
        blobfmt.decode_into(*scatter(bytes(blob), len(raw)), digest)
    with pytest.raises(CorruptBlob):  # cut short
        blobfmt.decode_into(*scatter(blobfmt.encode(raw)[:-10], len(raw)), digest)
    with pytest.raises(CorruptBlob):  # the manifest's length disagrees with the header
        blobfmt.decode_into(*scatter(blobfmt.encode(raw), len(raw) - 1), digest)
    with pytest.raises(CorruptBlob):  # shorter than a header
        blobfmt.decode_into(*scatter(b"CASB", len(raw)), digest)
