"""Deduplication across a series of similar images stays within 10% of the ideal."""
from __future__ import annotations

import random
from pathlib import Path

from engine_helpers import random_bytes, read_all, stored_bytes, text_like, upload

from cas_glance import blobfmt
from cas_glance.config import Config
from cas_glance.engine import Engine
from chunker import Chunker
from stores.memory import MemoryStore

SIZE = 32 << 20


def _next_version(prev: bytes, rng: random.Random) -> bytes:
    """A few scattered overwrites, one 4 KiB insert and one 4 KiB delete."""
    buf = bytearray(prev)
    for _ in range(5):
        at = rng.randrange(len(buf) - 512)
        buf[at:at + 512] = rng.randbytes(512)
    at = rng.randrange(len(buf))
    buf[at:at] = rng.randbytes(4096)
    at = rng.randrange(len(buf) - 4096)
    del buf[at:at + 4096]
    return bytes(buf)


def _series() -> list[bytes]:
    rng = random.Random(42)
    half = SIZE // 2
    # text-like and random halves interleaved in 1 MiB stretches
    parts = []
    for i in range(SIZE >> 20):
        parts.append(text_like(1 << 20, i) if i % 2 else random_bytes(1 << 20, 1000 + i))
    images = [b"".join(parts)]
    assert len(images[0]) == 2 * half
    for _ in range(4):
        images.append(_next_version(images[-1], rng))
    return images


def _ideal(images: list[bytes], cfg: Config) -> int:
    """Sum of encoded sizes over distinct non-zero chunks, computed without the engine."""
    chunker = Chunker(cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
    seen: dict[str, int] = {}
    for data in images:
        pos = 0
        for n in chunker.chunk_lengths(data):
            chunk = data[pos:pos + n]
            pos += n
            if chunk.count(0) == n:
                continue
            d = blobfmt.digest(chunk)
            if d not in seen:
                seen[d] = len(blobfmt.encode(chunk, cfg.zstd_level))
    return sum(seen.values())


async def test_series_of_similar_images_stores_close_to_ideal(tmp_path: Path) -> None:
    cfg = Config().replace(data_dir=tmp_path, fsync="never")  # default 16/64/256 KiB chunks
    store = MemoryStore()
    eng = Engine.open(cfg, store)
    try:
        images = _series()
        for i, data in enumerate(images):
            await upload(eng, f"v{i}", data)
        stored = stored_bytes(store)
        ideal = _ideal(images, cfg)
        logical = sum(len(d) for d in images)
        print(f"logical {logical} stored {stored} ideal {ideal} ratio {logical / stored:.2f}")
        assert abs(stored - ideal) <= 0.10 * ideal
        assert stored < 0.35 * logical  # 5 images of which ~1 unique, half of it compressible
        blobs = len(list(store.list()))
        rec = await upload(eng, "again", images[-1])
        assert len(list(store.list())) == blobs, "identical data must add no blob"
        assert rec["checksum"] == (eng.index.get_image("v4") or {}).get("checksum")
        assert await read_all(eng, "again") == images[-1]
        assert await read_all(eng, "v2") == images[2]
    finally:
        eng.close()
