"""Helpers for the collector tests: a real Engine (LMDB index + filesystem store) in tmp_path,
small chunks so a few hundred KiB make many of them, and `Lab`, which drives uploads, deletes,
downloads and collections through the public surfaces (Engine, Index, gc, fsck)."""
from __future__ import annotations

import random
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from cas_glance import gc
from cas_glance.config import Config
from cas_glance.domain import image as domain_image
from cas_glance.domain.context import RequestContext
from cas_glance.engine import Engine

NOW = "2026-01-01T00:00:00Z"
SMALL_CHUNKS = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384)


def small_config(data_dir: Path, **changes: object) -> Config:
    return Config(data_dir=data_dir).replace(fsync="never", cpu_threads=2, io_threads=4,
                                             **SMALL_CHUNKS, **changes)


def stored(store: object) -> tuple[int, int]:
    """(blob count, bytes) the store holds."""
    infos = list(store.list())  # type: ignore[attr-defined]
    return len(infos), sum(i.size for i in infos)


def variant(base: bytes, seed: int, edits: int = 2, span: int = 2048) -> bytes:
    """`base` with a few small random edits: shares most chunks with it."""
    rnd = random.Random(seed)
    data = bytearray(base)
    for _ in range(edits):
        at = rnd.randrange(0, len(data) - span)
        data[at:at + span] = rnd.randbytes(span)
    return bytes(data)


async def _stream(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


class Lab:
    """One engine and the operations the collector tests need."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.index, self.store = engine, engine.index, engine.store
        self.lock = Path(engine.cfg.data_dir) / gc.LOCK_NAME

    def create(self) -> str:
        iid = str(uuid.uuid4())
        body = {"disk_format": "raw", "container_format": "bare"}
        self.index.create_image(domain_image.new_image(body, RequestContext.admin(), NOW, iid))
        return iid

    async def upload(self, data: bytes, iid: str | None = None) -> str:
        iid = iid or self.create()
        await self.engine.upload(
            iid, _stream(data), begin=domain_image.begin_upload,
            finish=lambda r, res: domain_image.finish_upload(
                r, size=res.size, checksum=res.checksum, os_hash_algo=res.os_hash_algo,
                os_hash_value=res.os_hash_value, now=NOW),
            revert=lambda r: domain_image.revert_upload(r, NOW),
            size_cap=1 << 40, expected_size=None)
        return iid

    async def download(self, iid: str) -> bytes:
        return b"".join([piece async for piece in self.engine.read(iid)])

    def delete(self, iid: str, *, delayed: bool = False, when: str = NOW) -> dict:
        return self.index.delete_image(iid, lambda r: domain_image.mark_deleted(
            r, RequestContext.admin(), delayed=delayed, now=when))

    def collect(self, grace: float = 0, **kw: object) -> gc.GcReport:
        return gc.collect(self.index, self.store, grace=grace, lock_path=self.lock, **kw)

    def chunks(self) -> dict[str, dict]:
        return dict(self.index.iter_chunks())

    def stored(self) -> tuple[int, int]:
        return stored(self.store)
