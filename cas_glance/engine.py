"""Engine: the storage facade the API and the CLI use (`Engine.open(cfg)`).

Concern: tie index, store, chunker and thread pools together and run an upload as one unit:
  begin txn (queued -> saving)  ->  ingest with pins  ->  finish txn (hashes + status)
Invariants:
* on ANY exception, including CancelledError from a client disconnect, the image is reverted
  and every reference its pins took is released, in one txn (index.abort_upload) that a
  second cancellation cannot interrupt (offload.settle); then the exception is re-raised;
* the index never points at a blob that was not put and flushed first (see ingest).
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from cas_glance import reader
from cas_glance.config import Config
from cas_glance.index import Index
from cas_glance.indexfmt import Record
from cas_glance.ingest import Ingest, IngestResult
from cas_glance.offload import Offload, settle
from chunker import Chunker

log = logging.getLogger(__name__)

__all__ = ["Engine", "IngestResult"]

Mutate = Callable[[Record], Record]


class Engine:
    """Owns the index, the blob store and the thread pools of one process."""

    def __init__(self, cfg: Config, index: Index, store: Any, offload: Offload, chunker: Chunker) -> None:
        self.cfg, self.index, self.store, self.offload, self.chunker = cfg, index, store, offload, chunker
        self.uploads_active = 0  # ingests running now: they share the memory budget (ingest.py)

    @classmethod
    def open(cls, cfg: Config, store: Any = None) -> Engine:
        """Open the index under cfg.index_dir (refusing other chunker params) and the store
        (built from cfg when None)."""
        chunker = Chunker(cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
        index = Index(cfg.index_dir, chunker_params=chunker.params(), map_size=cfg.index_map_size,
                      sync=cfg.fsync != "never")
        if store is None:
            from stores.registry import build_store
            store = build_store(cfg)
        return cls(cfg, index, store, Offload(cfg.cpu_threads, cfg.io_threads), chunker)

    async def upload(self, image_id: str, stream: AsyncIterator[bytes], *, begin: Mutate,
                     finish: Callable[[Record, IngestResult], Record], revert: Mutate,
                     size_cap: int, expected_size: int | None) -> Record:
        """Store the image data; return the finished record. See docs/ARCHITECTURE.md."""
        await self.offload.io(self.index.update_image, image_id, begin)
        try:
            self.uploads_active += 1
            try:
                result = await Ingest(self, image_id, size_cap, expected_size).run(stream)
            finally:
                self.uploads_active -= 1
            log.info("upload %s: %d bytes, %d chunks, %d new blobs (%d bytes stored)", image_id,
                     result.size, result.chunks, result.new_chunks, result.stored_bytes)
            return await settle(self.offload.io(self.index.finish_upload, image_id,
                                                lambda rec: finish(rec, result)))
        except BaseException as exc:
            await self._revert(image_id, revert, exc)
            raise

    async def _revert(self, image_id: str, revert: Mutate, exc: BaseException) -> None:
        log.info("upload %s failed (%s: %s); reverting", image_id, type(exc).__name__, exc)
        try:
            await settle(self.offload.io(self.index.abort_upload, image_id, revert))
        except Exception:
            # the original error is what the client must see; the revert failure is logged
            log.exception("upload %s: revert failed", image_id)

    def read(self, image_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[memoryview]:
        """Bytes [start, end) of the image (end exclusive, clamped to its size), as read-only
        memoryviews of up to ~4 MiB (reader.GROUP_BYTES plus a chunk). A piece stays valid for
        as long as it is referenced; the reader reuses its buffer only after that."""
        return reader.read(self, image_id, start, end)

    def close(self) -> None:
        self.offload.close()
        self.index.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
