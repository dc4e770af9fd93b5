"""Reader: manifest (+ byte range) -> blobs -> verified bytes, prefetching ahead.

`read(engine, image_id, start, end)` is an async generator of bytes covering exactly
[start, end) of the image (end exclusive, clamped to the image size).
Invariants:
* one cursor seek finds the chunk covering `start` (index.manifest_batch), then the manifest
  is walked in batches of short read txns;
* consecutive chunks are fetched and verified in groups (one io job per group: store.get +
  blobfmt.decode, which checks BLAKE3) with at most PREFETCH groups ahead, so memory is bounded
  by about PREFETCH * GROUP_BYTES whatever the image size;
* zero chunks are synthesized, never fetched; a digest mismatch raises CorruptBlob, never
  yields wrong bytes; a manifest that ends before the range does raises Gone.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from cas_glance import blobfmt
from cas_glance.errors import Gone, NotFound
from cas_glance.ingest import store_call

if TYPE_CHECKING:
    from cas_glance.engine import Engine

log = logging.getLogger(__name__)

GROUP_BYTES = 1 << 20  # raw bytes per fetch job (and per yielded piece)
GROUP_CHUNKS = 16
PREFETCH = 8  # groups in flight
MANIFEST_BATCH = 512

Entry = tuple[int, "str | None", int]


def _fetch_group(engine: Engine, group: list[Entry], start: int, end: int) -> bytes:
    """Worker thread: fetch, verify and join a run of chunks, trimmed to [start, end)."""
    parts = []
    for offset, digest, length in group:
        if digest is None:
            raw = bytes(length)
        else:
            raw = blobfmt.decode(store_call(engine.store.get, digest), digest)
        lo, hi = max(start - offset, 0), min(end - offset, length)
        parts.append(raw if (lo, hi) == (0, length) else raw[lo:hi])
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def _entries(engine: Engine, image_id: str, start: int, end: int) -> AsyncIterator[Entry]:
    """Manifest entries covering [start, end), checked to be contiguous."""
    pos = start
    while pos < end:
        batch = await engine.offload.io(engine.index.manifest_batch, image_id, pos, MANIFEST_BATCH)
        if not batch:
            raise Gone(f"Image {image_id}: data ends at byte {pos}, expected {end} (deleted meanwhile?)")
        for entry in batch:
            offset, _digest, length = entry
            if offset > pos:
                raise Gone(f"Image {image_id}: manifest has a hole at byte {pos}")
            if offset >= end:
                return
            yield entry
            pos = offset + length


def _groups(entries: list[Entry]) -> Iterator[list[Entry]]:
    group: list[Entry] = []
    size = 0
    for e in entries:
        group.append(e)
        size += e[2]
        if size >= GROUP_BYTES or len(group) >= GROUP_CHUNKS:
            yield group
            group, size = [], 0
    if group:
        yield group


async def read(engine: Engine, image_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
    rec = engine.index.get_image(image_id)
    if rec is None:
        raise NotFound(f"No image found with ID {image_id}")
    size = rec.get("size") or 0
    end = size if end is None else min(end, size)
    if start < 0 or start >= end:
        return
    window: collections.deque[asyncio.Future[bytes]] = collections.deque()
    pending: list[Entry] = []
    try:
        async for entry in _entries(engine, image_id, start, end):
            pending.append(entry)
            if sum(e[2] for e in pending) < GROUP_BYTES and len(pending) < GROUP_CHUNKS:
                continue
            for group in _groups(pending):
                window.append(engine.offload.io(_fetch_group, engine, group, start, end))
            pending = []
            while len(window) >= PREFETCH:
                yield await window.popleft()
        for group in _groups(pending):
            window.append(engine.offload.io(_fetch_group, engine, group, start, end))
        while window:
            yield await window.popleft()
    finally:
        for fut in window:  # consumer went away or a fetch failed: drop the read-ahead
            fut.cancel()
