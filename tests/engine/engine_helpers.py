"""Shared helpers for the engine tests: configs, streams, data generators, upload shorthands."""
from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from cas_glance.config import Config
from cas_glance.engine import Engine, IngestResult
from stores.errors import StoreUnavailable
from stores.memory import MemoryStore

# 16 letters + space: ~4 bits of entropy per byte, so zstd roughly halves it (text-like)
_TEXT = bytes.maketrans(bytes(range(256)), (b"etaoinshrdlucmf " * 16))


def text_like(n: int, seed: int) -> bytes:
    return random_bytes(n, seed).translate(_TEXT)


def random_bytes(n: int, seed: int) -> bytes:
    rng = random.Random(seed)  # randbytes is limited to 256 MiB per call
    return b"".join(rng.randbytes(min(64 << 20, n - i)) for i in range(0, n, 64 << 20))


def small_cfg(tmp: Path, **kw: object) -> Config:
    """Small chunks so a few MiB give many chunks and boundaries."""
    base: dict[str, object] = {"data_dir": tmp, "chunk_min": 2048, "chunk_avg": 8192,
                               "chunk_max": 32768, "fsync": "never"}
    base.update(kw)
    return Config().replace(**base)


async def blocks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def begin(rec: dict) -> dict:
    assert rec["status"] == "queued", rec
    return dict(rec, status="saving")


def finish(rec: dict, res: IngestResult) -> dict:
    return dict(rec, status="active", size=res.size, checksum=res.checksum,
                os_hash_algo=res.os_hash_algo, os_hash_value=res.os_hash_value)


def revert(rec: dict) -> dict:
    return dict(rec, status="queued")


async def upload(engine: Engine, image_id: str, data: bytes | AsyncIterator[bytes], *,
                 size_cap: int = 1 << 40, expected_size: int | None = None, block: int = 1 << 20) -> dict:
    if engine.index.get_image(image_id) is None:
        engine.index.create_image({"id": image_id, "status": "queued"})
    stream = blocks(data, block) if isinstance(data, bytes) else data
    return await engine.upload(image_id, stream, begin=begin, finish=finish, revert=revert,
                               size_cap=size_cap, expected_size=expected_size)


async def read_all(engine: Engine, image_id: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([piece async for piece in engine.read(image_id, start, end)])


def manifest_len(engine: Engine, image_id: str) -> int:
    return len(list(engine.index.manifest(image_id)))


def stored_bytes(store: MemoryStore) -> int:
    return sum(info.size for info in store.list())


class NthPutFails(MemoryStore):
    """A MemoryStore whose `fail_at`-th put (1-based) and every later one raise StoreUnavailable."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.puts = fail_at, 0
        self._count = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._count:
            self.puts += 1
            n = self.puts
        if n >= self.fail_at:
            raise StoreUnavailable(f"injected failure on put #{n}")
        super().put(key, data)
