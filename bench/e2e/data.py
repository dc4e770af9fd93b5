"""Benchmark data: non-dedupable random streams, a seeded snapshot series, a directory series.

* :class:`RandomSource` makes any amount of random data from one ``os.urandom`` pool without
  per-byte Python work: each 1 MiB block is a pool slice with a unique (nonce, block) stamp
  written every 4 KiB. 4 KiB is below any sane minimum chunk size, so every content-defined
  chunk holds a stamp and nothing dedups, neither inside an upload nor across uploads.
* :func:`snapshot_series` is deterministic for a seed: a base image of zero, text-like
  (compressible) and random extents, then snapshots each differing from the previous one by
  about ``change`` of its bytes (scattered overwrites, inserts that shift data, deletes).
* :func:`directory_series` lists real files (any disk images) in name order.

Streams yield 1 MiB pieces (what glanceclient sends), so client memory stays bounded.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1 << 20
STAMP_EVERY = 4096
_STAMP = struct.Struct("<QQ")
_SECTOR = 512

# Text-like bytes: a skewed alphabet (about 4 bits of entropy per byte, zstd roughly halves it).
_ALPHABET = (b" " * 40 + b"e" * 24 + b"t" * 18 + b"aoins" * 14 + b"hrdlu" * 8 + b"cmfwygpb" * 4
             + b"\n" * 6 + b"vkxjqz.,0123456789" * 2)
_TEXT_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


class RandomSource:
    """Unique random data on demand, from one random pool of ``pool_size`` bytes."""

    def __init__(self, pool_size: int = 64 << 20):
        if pool_size % BLOCK:
            raise ValueError("pool_size must be a multiple of 1 MiB")
        self.pool = memoryview(os.urandom(pool_size))
        self._blocks = pool_size // BLOCK

    def block(self, nonce: int, index: int, length: int = BLOCK) -> bytearray:
        """Block ``index`` of stream ``nonce``: unique in every 4 KiB, ``length`` <= 1 MiB."""
        start = (index % self._blocks) * BLOCK
        out = bytearray(self.pool[start:start + length])
        for offset in range(0, length - _STAMP.size + 1, STAMP_EVERY):
            _STAMP.pack_into(out, offset, nonce, index)
        return out

    def blocks(self, nonce: int, size: int) -> Iterator[bytearray]:
        """The stream ``nonce`` of ``size`` bytes, in 1 MiB blocks."""
        for index in range(math.ceil(size / BLOCK)):
            yield self.block(nonce, index, min(BLOCK, size - index * BLOCK))

    async def stream(self, nonce: int, size: int) -> AsyncIterator[bytearray]:
        """Async form of :meth:`blocks`, an upload body."""
        for block in self.blocks(nonce, size):
            yield block

    def md5(self, nonce: int, size: int) -> str:
        """MD5 of stream ``nonce`` (for verification, off the clock)."""
        digest = hashlib.md5()
        for block in self.blocks(nonce, size):
            digest.update(block)
        return digest.hexdigest()


def det_bytes(seed: int, label: str, size: int) -> bytes:
    """``size`` pseudo-random bytes determined by (seed, label)."""
    return hashlib.shake_128(f"{seed}/{label}".encode()).digest(size)


def fill(kind: str, seed: int, label: str, size: int) -> bytes:
    """An extent of ``kind`` zero | text | random."""
    if kind == "zero":
        return bytes(size)
    data = det_bytes(seed, label, size)
    return data.translate(_TEXT_TABLE) if kind == "text" else data


@dataclass(frozen=True)
class SeriesSpec:
    """A snapshot series: base size, number of snapshots after it, fraction changed per step."""

    seed: int = 7
    base_size: int = 256 << 20
    snapshots: int = 5
    change: float = 0.02
    zero: float = 0.35
    text: float = 0.30


def _sectors(rng: random.Random, low: int, high: int) -> int:
    """A log-uniform length in [low, high], a multiple of 512 bytes."""
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return max(_SECTOR, int(value) // _SECTOR * _SECTOR)


def base_image(spec: SeriesSpec) -> bytes:
    """The first image: extents of 64 KiB-4 MiB, each zero, text-like or random."""
    rng = random.Random(f"{spec.seed}/base")
    pieces: list[bytes] = []
    total = 0
    while total < spec.base_size:
        size = min(_sectors(rng, 64 << 10, 4 << 20), spec.base_size - total)
        roll = rng.random()
        kind = "zero" if roll < spec.zero else "text" if roll < spec.zero + spec.text else "random"
        pieces.append(fill(kind, spec.seed, f"base/{total}", size))
        total += size
    return b"".join(pieces)


def _edits(rng: random.Random, size: int, change: float) -> list[tuple[int, str, int]]:
    """Sorted, non-overlapping (position, op, length) edits touching ~``change`` of ``size``."""
    budget = int(size * change)
    edits: list[tuple[int, str, int]] = []
    while budget > 0:
        length = min(_sectors(rng, 4 << 10, 256 << 10), max(budget, _SECTOR))
        op = rng.choices(("overwrite", "insert", "delete"), weights=(6, 2, 2))[0]
        pos = rng.randrange(0, max(1, size - length)) // _SECTOR * _SECTOR
        edits.append((pos, op, length))
        budget -= length
    edits.sort()
    kept: list[tuple[int, str, int]] = []
    end = 0
    for pos, op, length in edits:
        if pos >= end:
            kept.append((pos, op, length))
            end = pos + (0 if op == "insert" else length)
    return kept


def snapshot(prev: bytes, spec: SeriesSpec, step: int) -> bytes:
    """Snapshot ``step`` (1-based): ``prev`` with scattered overwrites, inserts and deletes."""
    rng = random.Random(f"{spec.seed}/snapshot/{step}")
    view = memoryview(prev)
    pieces: list[bytes | memoryview] = []
    cursor = 0
    for n, (pos, op, length) in enumerate(_edits(rng, len(prev), spec.change)):
        pieces.append(view[cursor:pos])
        if op != "delete":
            kind = rng.choices(("random", "text", "zero"), weights=(5, 4, 1))[0]
            pieces.append(fill(kind, spec.seed, f"snap/{step}/{n}", length))
        cursor = pos if op == "insert" else pos + length
    pieces.append(view[cursor:])
    return b"".join(pieces)


def snapshot_series(spec: SeriesSpec) -> Iterator[tuple[str, bytes]]:
    """(name, content) of the base image then each snapshot, built lazily."""
    image = base_image(spec)
    yield "base", image
    for step in range(1, spec.snapshots + 1):
        image = snapshot(image, spec, step)
        yield f"snap-{step}", image


async def memory_stream(data: bytes) -> AsyncIterator[bytes]:
    """An in-memory image as an upload body, 1 MiB at a time."""
    view = memoryview(data)
    for offset in range(0, len(view), BLOCK):
        yield bytes(view[offset:offset + BLOCK])


async def file_stream(path: Path) -> AsyncIterator[bytes]:
    """A file as an upload body, 1 MiB at a time, each read on a worker thread."""
    loop = asyncio.get_running_loop()
    with open(path, "rb") as handle:  # noqa: ASYNC230 - opening is instant; reads are offloaded
        while piece := await loop.run_in_executor(None, handle.read, BLOCK):
            yield piece


def directory_series(directory: Path) -> list[Path]:
    """Regular files of ``directory`` in name order; empty directories are an error."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    if not files:
        raise ValueError(f"--series {directory}: no files to ingest")
    return files
