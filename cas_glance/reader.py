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
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from cas_glance import blobfmt
from cas_glance.errors import Gone, NotFound
from cas_glance.ingest import store_call

if TYPE_CHECKING:
    from cas_glance.engine import Engine

log = logging.getLogger(__name__)

GROUP_BYTES = 4 << 20  # raw bytes per fetch job (and per yielded piece)
FIRST_GROUP_BYTES = 1 << 20  # the first job is smaller: headers (sent after it) go out sooner
GROUP_CHUNKS = 256  # and at most this many chunks per job
PREFETCH = 3  # groups in flight (each on its own io thread: two or more cores busy)
MANIFEST_BATCH = 512

Entry = tuple[int, "str | None", int]


def _fetch_group(store: Any, group: list[Entry], start: int, end: int) -> bytes:
    """Worker thread: fetch, verify and join a run of chunks, trimmed to [start, end).

    One job per group keeps the loop's per-byte work to one future and one write per group;
    raw-codec chunks are verified in place (blobfmt.decode_view) and copied once, by the join.
    """
    parts: list[bytes | memoryview] = []
    get = store.get
    for offset, digest, length in group:
        if digest is None:
            raw: bytes | memoryview = bytes(length)
        else:
            raw = blobfmt.decode_view(store_call(get, digest), digest)
        if offset < start or offset + length > end:
            raw = memoryview(raw)[max(start - offset, 0):min(end - offset, length)]
        parts.append(raw)
    if len(parts) == 1 and isinstance(parts[0], bytes):
        return parts[0]
    return b"".join(parts)


async def _groups(engine: Engine, image_id: str, start: int, end: int) -> AsyncIterator[list[Entry]]:
    """Manifest entries covering [start, end), checked to be contiguous, in fetch groups."""
    pos = start
    group: list[Entry] = []
    size, limit = 0, FIRST_GROUP_BYTES
    while pos < end:
        batch = await engine.offload.io(engine.index.manifest_batch, image_id, pos, MANIFEST_BATCH)
        if not batch:
            raise Gone(f"Image {image_id}: data ends at byte {pos}, expected {end} (deleted meanwhile?)")
        for entry in batch:
            offset, _digest, length = entry
            if offset > pos:
                raise Gone(f"Image {image_id}: manifest has a hole at byte {pos}")
            if offset >= end:
                break
            group.append(entry)
            size += length
            pos = offset + length
            if size >= limit or len(group) >= GROUP_CHUNKS:
                yield group
                group, size, limit = [], 0, GROUP_BYTES
        else:
            continue
        break  # an entry at or past `end`: done
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
    try:
        async for group in _groups(engine, image_id, start, end):
            window.append(engine.offload.io(_fetch_group, engine.store, group, start, end))
            if len(window) >= PREFETCH:
                yield await window.popleft()
        while window:
            yield await window.popleft()
    finally:
        for fut in window:  # consumer went away or a fetch failed: drop the read-ahead
            fut.cancel()
