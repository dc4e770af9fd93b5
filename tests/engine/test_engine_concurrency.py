"""Concurrent uploads sharing chunks: every image reads back, refcounts equal manifest uses."""
from __future__ import annotations

import asyncio
from collections import Counter

from engine_helpers import random_bytes, read_all, text_like, upload

from cas_glance.engine import Engine
from stores.memory import MemoryStore


async def test_concurrent_uploads_of_overlapping_data(engine: Engine, store: MemoryStore) -> None:
    shared = random_bytes(3 << 20, 21)
    images = {f"c{i}": text_like(500_000, 30 + i) + shared + bytes(300_000) + shared[: (i + 1) << 18]
              for i in range(6)}
    await asyncio.gather(*(upload(engine, k, v, block=200_000) for k, v in images.items()))
    for k, v in images.items():
        assert await read_all(engine, k) == v
    uses: Counter[str] = Counter()
    for k in images:
        uses.update(d for _o, d, _n in engine.index.manifest(k) if d is not None)
    chunks = dict(engine.index.iter_chunks())
    assert {d: e["refcount"] for d, e in chunks.items()} == dict(uses)
    assert {i.key for i in store.list()} == set(chunks)  # one blob per chunk, no stray puts


def test_uploads_running_together_share_the_memory_budget(engine: Engine) -> None:
    from cas_glance import ingest

    engine.uploads_active = 1
    assert ingest.lane_depth(engine) == ingest.LANE_DEPTH
    assert ingest.stretch_bytes(engine) == ingest.STRETCH
    engine.uploads_active = 16  # the bench's concurrent phase
    assert ingest.lane_depth(engine) * 16 <= ingest.LANE_BUDGET
    assert 2 * ingest.stretch_bytes(engine) * 16 <= ingest.STRETCH_BUDGET
    engine.uploads_active = 1000  # never below the floor: every upload still moves
    assert ingest.lane_depth(engine) == ingest.MIN_LANE_DEPTH
    assert ingest.stretch_bytes(engine) == ingest.MIN_STRETCH
    engine.uploads_active = 0
