"""Blob format: what a chunk looks like in the store, and the one place digests are checked.

Layout (16-byte header, big-endian) then payload:
    magic b"CASB" | version u8 (1) | codec u8 (0 raw, 1 zstd) | 2 reserved zero bytes |
    raw length u64
A chunk is stored zstd-compressed only when that makes it smaller, raw otherwise; a chunk whose
three sampled 4 KiB windows do not compress at zstd level 1 is stored raw without trying
(random or already-compressed data: the try cost as much as hashing it). The key of a
blob is the BLAKE3-256 hex digest of the *raw* chunk, so any blob can be verified alone:
parse, decompress, hash, compare (`decode`). Every failure of that check is `CorruptBlob`.

zstd compressor/decompressor objects are not thread-safe: each thread keeps its own.
"""
from __future__ import annotations

import struct
import threading

import blake3
import zstandard

from cas_glance.errors import CorruptBlob

MAGIC = b"CASB"
VERSION = 1
RAW = 0
ZSTD = 1
CODECS = {RAW: "raw", ZSTD: "zstd"}
_HEADER = struct.Struct(">4sBB2xQ")
HEADER_SIZE = _HEADER.size

_local = threading.local()


def digest(raw: bytes | bytearray | memoryview) -> str:
    """BLAKE3-256 of `raw` as 64 lower-case hex digits (the blob key)."""
    hexdigest: str = blake3.blake3(raw).hexdigest()
    return hexdigest


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache = getattr(_local, "cctx", None)
    if cache is None:
        cache = _local.cctx = {}
    cctx = cache.get(level)
    if cctx is None:
        # content size in the frame lets decode check it before allocating
        cctx = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    out: zstandard.ZstdCompressor = cctx
    return out


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


SAMPLE = 4096  # bytes per sampled window (head, middle, tail)
SAMPLE_GAIN = 0.98  # the sample must shrink below this fraction to try the whole chunk


def _compressible(raw: bytes) -> bool:
    """Whether the whole chunk is worth a zstd try: cheap level-1 test of three windows."""
    if len(raw) < 4 * SAMPLE:
        return True
    mid = len(raw) // 2
    sample = b"".join((raw[:SAMPLE], raw[mid:mid + SAMPLE], raw[-SAMPLE:]))
    return len(_compressor(1).compress(sample)) < SAMPLE_GAIN * len(sample)


def encode_parts(raw: bytes | memoryview, level: int = 3) -> tuple[bytes, bytes | memoryview]:
    """`encode` as (header, payload), for writers that gather the two without joining them:
    a raw-codec payload is `raw` itself, not a copy."""
    if _compressible(raw):
        packed: bytes = _compressor(level).compress(raw)
        if len(packed) < len(raw):
            return _HEADER.pack(MAGIC, VERSION, ZSTD, len(raw)), packed
    return _HEADER.pack(MAGIC, VERSION, RAW, len(raw)), raw


def encode(raw: bytes | memoryview, level: int = 3) -> bytes:
    """Header + zstd(raw) when that is shorter than raw, else header + raw."""
    header, payload = encode_parts(raw, level)
    return header + payload


def codec_of(blob: bytes) -> int:
    """The codec byte of an encoded blob or of its header (no verification)."""
    return blob[5]


def _parse(blob: bytes, expected: str) -> tuple[int, int]:
    if len(blob) < HEADER_SIZE:
        raise CorruptBlob(f"blob {expected}: {len(blob)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, codec, length = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CorruptBlob(f"blob {expected}: bad magic {magic!r} (expected {MAGIC!r})")
    if version != VERSION:
        raise CorruptBlob(f"blob {expected}: unknown format version {version}")
    if codec not in CODECS:
        raise CorruptBlob(f"blob {expected}: unknown codec {codec}")
    return codec, length


def _payload(blob: bytes, codec: int, length: int, expected: str) -> bytes:
    payload = memoryview(blob)[HEADER_SIZE:]
    if codec == RAW:
        return bytes(payload) if len(blob) > HEADER_SIZE else b""
    try:
        raw: bytes = _decompressor().decompress(payload, max_output_size=length)
    except zstandard.ZstdError as exc:
        raise CorruptBlob(f"blob {expected}: zstd payload does not decompress: {exc}") from None
    return raw


def decode(blob: bytes, expected_digest: str) -> bytes:
    """Return the raw chunk of `blob`, verified: its BLAKE3 equals `expected_digest`.

    Raises CorruptBlob naming the digest and what is wrong (header, codec, payload, length or
    content hash) — never returns wrong bytes.
    """
    raw = decode_view(blob, expected_digest)
    return raw if isinstance(raw, bytes) else bytes(raw)


def decode_view(blob: bytes, expected_digest: str) -> bytes | memoryview:
    """`decode` without the copy of a raw-codec payload: that chunk comes back as a read-only
    memoryview into `blob` (which it keeps alive); a zstd chunk as the decompressed bytes.
    Verified exactly as `decode` verifies (same CorruptBlob errors)."""
    codec, length = _parse(blob, expected_digest)
    raw: bytes | memoryview
    if codec == RAW:
        raw = memoryview(blob)[HEADER_SIZE:].toreadonly()
    else:
        raw = _payload(blob, codec, length, expected_digest)
    if len(raw) != length:
        raise CorruptBlob(f"blob {expected_digest}: header says {length} raw bytes, payload gives {len(raw)}")
    _verify(raw, expected_digest)
    return raw


def _verify(raw: bytes | memoryview, expected_digest: str) -> None:
    actual = digest(raw)
    if actual != expected_digest:
        raise CorruptBlob(f"blob {expected_digest}: content hashes to {actual}")
