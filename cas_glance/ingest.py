"""Ingest: an async byte stream -> content-defined chunks -> store -> pinned manifest.

Pipeline per incoming block (all heavy work off the loop, through Offload):
  md5 lane, os_hash lane     each its own chain of cpu jobs in stream order (up to LANE_DEPTH
                             blocks queued); they run beside the cut, each on its own thread
  cut                        cpu job: streaming FastCDC, BLAKE3 per chunk, zero test, and a
                             lookup of which digests are already live (skip compress + put)
  store batches              io jobs: zstd + put of up to BATCH new chunks each; at most
                             MAX_INFLIGHT chunks in flight (backpressure on the stream)
  stretch commit             every STRETCH bytes: wait for the stretch's puts, flush them,
                             then one `index.pin` txn (ordering rule: blob durable first)
Invariants:
* memory is bounded independently of image size: LANE_DEPTH blocks per lane, MAX_INFLIGHT chunks in
  store jobs, and the raw chunks of at most two stretches (kept for a re-put if pin finds a
  chunk dying or gone);
* all-zero chunks are never stored: the manifest gets the zero marker;
* pin gets the collection generation read before the stretch's lookups and puts; a blob is
  claimed as put (may create its entry) only if put after the generation handed over, so a
  collection between put and pin makes pin refuse and the claim is put again;
* on failure or cancellation every job this ingest started is settled before the exception
  leaves `run`, so the Engine's revert txn cannot race a late pin.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import stores.errors as store_errors
from cas_glance import blobfmt
from cas_glance.errors import BadRequest, PayloadTooLarge, StorageFull, StoreFailure
from cas_glance.index import ChunkRef

if TYPE_CHECKING:
    from cas_glance.engine import Engine

log = logging.getLogger(__name__)

STRETCH = 8 << 20  # bytes of image per pin txn
BATCH = 4  # new chunks per store job (one thread hop per batch, not per chunk)
MAX_INFLIGHT = 32  # new chunks in store jobs at once
LANE_DEPTH = 4  # blocks queued per hash lane
DYING_WAIT = 60.0
MAX_PIN_ROUNDS = 50  # re-put rounds per stretch before giving up  # seconds to wait for a collection to finish with a dying chunk


@dataclass(frozen=True)
class IngestResult:
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    chunks: int = 0  # chunk references in the manifest (zero chunks included)
    new_chunks: int = 0  # blobs this upload put
    stored_bytes: int = 0  # encoded bytes of those blobs


def store_call(fn: Any, *args: Any) -> Any:
    """Call a store method, mapping store errors into the domain tree."""
    try:
        return fn(*args)
    except store_errors.StorageFull as exc:
        raise StorageFull(f"blob store is full: {exc}") from exc
    except store_errors.StoreError as exc:
        raise StoreFailure(f"blob store failed: {exc}") from exc


def _is_zero(chunk: bytes) -> bool:
    # cheap rejection first: real data rarely starts and ends with NUL
    return chunk[0] == 0 and chunk[-1] == 0 and chunk == bytes(len(chunk))


class _Lane:
    """Ordered `update` calls of one hash object, one cpu job at a time.

    Blocks queue up while a job runs; when it ends, the next job takes everything queued (a
    done-callback chains it, so the hash thread does not wait for the ingest loop). At most
    LANE_DEPTH blocks wait: then `feed` waits (backpressure)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.name, self._h, self._offload = name, hashlib.new(name), engine.offload
        self.queue: list[bytes] = []
        self.pending: asyncio.Future[Any] | None = None

    def _update(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self._h.update(block)

    def _kick(self, _done: Any = None) -> None:
        if _done is not None:
            self.pending = None
            if _done.cancelled() or _done.exception() is not None:
                self.queue.clear()  # the upload is failing anyway; `wait` reports it
                self.pending = _done
                return
        if self.pending is None and self.queue:
            blocks, self.queue = self.queue, []
            self.pending = self._offload.cpu(self._update, blocks)
            self.pending.add_done_callback(self._kick)

    async def _wait(self) -> None:
        # asyncio.wait never cancels what it waits for: a cancelled upload leaves the job be
        fut = self.pending
        if fut is None:
            return
        if fut.done():
            await asyncio.sleep(0)  # its done-callback (which chains the next job) runs first
        else:
            await asyncio.wait([fut])
        if fut.done() and (fut.cancelled() or fut.exception() is not None):
            fut.result()  # re-raise what failed the update

    async def feed(self, block: bytes) -> None:
        self.queue.append(block)
        self._kick()
        while len(self.queue) >= LANE_DEPTH:
            await self._wait()

    async def hexdigest(self) -> str:
        while self.queue or (self.pending is not None and not self.pending.done()):
            await self._wait()
        await self._wait()
        return self._h.hexdigest()


@dataclass
class _Stretch:
    refs: list[tuple[int, str | None, int]] = field(default_factory=list)
    raw: dict[str, bytes] = field(default_factory=dict)  # for a re-put, see module doc
    new: set[str] = field(default_factory=set)  # digests whose put started in this stretch
    jobs: list[asyncio.Future[list[tuple[str, int, int]]]] = field(default_factory=list)
    size: int = 0
    gen: int | None = None  # collection generation read before its first lookup (see pin)


class Ingest:
    """One upload's ingest. `run(stream)` returns IngestResult or raises (after settling)."""

    def __init__(self, engine: Engine, image_id: str, size_cap: int, expected_size: int | None) -> None:
        self.e, self.image_id = engine, image_id
        self.size_cap, self.expected = size_cap, expected_size
        self.stream = engine.chunker.stream()
        self.lanes = [_Lane(engine, "md5"), _Lane(engine, engine.cfg.hashing_algorithm)]
        self.have: set[str] = set()  # digests live at lookup or put by this upload
        self.stretch = _Stretch()
        self.offset = self.size = self.n_chunks = self.n_new = self.stored = 0
        self.slots = asyncio.Semaphore(MAX_INFLIGHT // BATCH)
        self.commit: asyncio.Task[None] | None = None
        self.jobs: list[asyncio.Future[Any]] = []  # everything to settle on failure
        self.block_gen = 0  # collection generation read by the latest cut job

    async def run(self, stream: AsyncIterator[bytes]) -> IngestResult:
        try:
            async for block in stream:
                if block:
                    await self._block(bytes(block))
            await self._cut(None)
            await self._end_stretch()
            if self.commit is not None:
                await asyncio.shield(self.commit)
            if self.expected is not None and self.size != self.expected:
                raise BadRequest(f"Image data has {self.size} bytes, {self.expected} were announced")
            md5, osh = [await lane.hexdigest() for lane in self.lanes]
        except BaseException:
            await self._settle()
            raise
        return IngestResult(self.size, md5, self.lanes[1].name, osh, self.n_chunks, self.n_new, self.stored)

    async def _settle(self) -> None:
        from cas_glance.offload import settle_all
        pending = self.jobs + [lane.pending for lane in self.lanes if lane.pending is not None]
        if self.commit is not None:
            pending.append(self.commit)
        await settle_all([p for p in pending if p is not None])

    async def _block(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.size_cap:
            raise PayloadTooLarge(f"Image exceeds the storage quota or size cap of {self.size_cap} bytes")
        if self.expected is not None and self.size > self.expected:
            raise BadRequest(f"Image data exceeds the announced size of {self.expected} bytes")
        if self.commit is not None and self.commit.done() and self.commit.exception() is not None:
            raise self.commit.exception()  # type: ignore[misc]  # fail fast, not a stretch late
        for lane in self.lanes:
            await lane.feed(block)
        await self._cut(block)

    async def _cut(self, block: bytes | None) -> None:
        fut = self.e.offload.cpu(self._cut_job, block)
        self.jobs.append(fut)
        self.block_gen, cut = await fut
        self.jobs.pop()
        batch: list[tuple[str, bytes]] = []
        for digest, chunk, known in cut:
            batch = await self._chunk(digest, chunk, known, batch)
        await self._submit(batch)

    def _cut_job(self, block: bytes | None) -> tuple[int, list[tuple[str | None, bytes, bool]]]:
        """Worker thread: cut, hash, zero test, live lookup. Returns the collection generation
        read before the lookup, and (digest|None, chunk, known) per chunk."""
        chunks = self.stream.feed(block) if block is not None else self.stream.finish()
        digests = [None if _is_zero(c) else blobfmt.digest(c) for c in chunks]
        gen = self.e.index.gc_generation()
        known = self.e.index.known_chunks([d for d in digests if d is not None]) if chunks else set()
        return gen, [(d, c, d in known) for d, c in zip(digests, chunks)]

    async def _chunk(self, digest: str | None, chunk: bytes, known: bool,
                     batch: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        st = self.stretch
        if st.gen is None:
            st.gen = self.block_gen
        st.refs.append((self.offset, digest, len(chunk)))
        self.offset += len(chunk)
        st.size += len(chunk)
        self.n_chunks += 1
        if digest is not None:
            st.raw[digest] = chunk
            if digest not in self.have:
                self.have.add(digest)
                if not known:
                    st.new.add(digest)
                    batch.append((digest, chunk))
                    if len(batch) >= BATCH:
                        await self._submit(batch)
                        batch = []
        if st.size >= STRETCH:
            await self._submit(batch)
            batch = []
            await self._end_stretch()
        return batch

    async def _submit(self, batch: list[tuple[str, bytes]]) -> None:
        if not batch:
            return
        await self.slots.acquire()  # backpressure: bounded chunks in store jobs
        task = asyncio.ensure_future(self.e.offload.io(self._store_job, batch))
        task.add_done_callback(self._store_job_done)
        self.stretch.jobs.append(task)
        self.jobs.append(task)

    def _store_job_done(self, task: asyncio.Future[Any]) -> None:
        self.slots.release()
        if not task.cancelled():
            # Mark the exception retrieved: the stretch's commit re-raises the first failed
            # job's error, and a failing upload may never await the jobs after it (asyncio
            # would log "Future exception was never retrieved" when they are collected).
            task.exception()

    def _store_job(self, batch: list[tuple[str, bytes]]) -> list[tuple[str, int, int]]:
        """Worker thread: encode (zstd releases the GIL) and put each blob."""
        out = []
        for digest, raw in batch:
            blob = blobfmt.encode(raw, self.e.cfg.zstd_level)
            store_call(self.e.store.put, digest, blob)
            out.append((digest, len(blob), blobfmt.codec_of(blob)))
        return out

    async def _end_stretch(self) -> None:
        st, self.stretch = self.stretch, _Stretch()
        if not st.refs:
            return
        if self.commit is not None:
            await asyncio.shield(self.commit)  # pins stay in order; at most two stretches held
        self.jobs = [j for j in self.jobs if not j.done()]
        self.commit = asyncio.ensure_future(self._commit(st))

    async def _commit(self, st: _Stretch) -> None:
        """Puts done -> flush -> pin; re-put what pin reports dying/gone, and retry."""
        info: dict[str, tuple[int, int]] = {}
        for job in st.jobs:
            for digest, stored, codec in await job:
                info[digest] = (stored, codec)
        if info:
            await self.e.offload.io(store_call, self.e.store.flush, list(info))
        self.n_new += len(info)
        self.stored += sum(s for s, _c in info.values())
        gen = st.gen
        for _round in range(MAX_PIN_ROUNDS):
            refs = [ChunkRef(o, d, n, *info[d], True) if d in info else ChunkRef(o, d, n)
                    for o, d, n in st.refs]
            need = await self.e.offload.io(self.e.index.pin, self.image_id, refs, gen)
            if not need:
                return
            log.info("ingest %s: %d chunk(s) dying or gone at pin; re-putting", self.image_id, len(need))
            # a blob may be claimed as put only if it was put after the generation handed to
            # pin (one put earlier may have been collected meanwhile): put every claim again
            gen, info = await self._reput(sorted(set(need) | info.keys()), st.raw)
        raise StoreFailure(f"image {self.image_id}: pin refused {MAX_PIN_ROUNDS} times (collections racing?)")

    async def _reput(self, digests: list[str], raw: dict[str, bytes]) -> tuple[int, dict[str, tuple[int, int]]]:
        """Wait until no digest is dying, then put them again; returns the collection
        generation read before the puts (a collection after it makes pin refuse again)."""
        deadline = time.monotonic() + DYING_WAIT
        for d in digests:
            # a dying blob is being deleted: putting it before the entry is dropped could lose it
            while await self.e.offload.io(self.e.index.chunk_state, d) == "dying":
                if time.monotonic() > deadline:
                    raise StoreFailure(f"chunk {d} stayed dying for {DYING_WAIT:.0f}s (collector stuck?)")
                await asyncio.sleep(0.05)
        gen = await self.e.offload.io(self.e.index.gc_generation)
        out = await self.e.offload.io(self._store_job, [(d, raw[d]) for d in digests])
        await self.e.offload.io(store_call, self.e.store.flush, digests)
        return gen, {d: (s, c) for d, s, c in out}
