"""Ingest: an async byte stream -> content-defined chunks -> store -> pinned manifest.

Pipeline per incoming block (all heavy work off the loop, through Offload):
  md5 lane, os_hash lane     each its own chain of cpu jobs in stream order (up to lane_depth()
                             blocks queued); they run beside the cut, each on its own thread
  cut                        a lane too: streaming FastCDC, BLAKE3 per chunk, zero test, and a
                             lookup of which digests are already live (skip compress + put);
                             a consumer task turns its results into stretches, in order
  store batches              io jobs: zstd + put of up to BATCH new chunks each (REMOTE_BATCH
                             for a remote store, so more puts run at once); at most
                             MAX_INFLIGHT chunks in flight (backpressure on the stream)
  stretch commit             every stretch_bytes(): wait for the stretch's puts, flush them,
                             then one `index.pin` txn (ordering rule: blob durable first)
Invariants:
* memory is bounded independently of image size and shared across uploads: each running upload
  takes an equal share of LANE_BUDGET blocks (LANE_DEPTH at most) and of STRETCH_BUDGET
  bytes per stretch (STRETCH at most); MAX_INFLIGHT chunks in store jobs; the raw chunks of
  at most two stretches are held (for a re-put if pin finds a chunk dying or gone), most of
  them as views that keep their received block alive: about one block more per stretch;
* all-zero chunks are never stored: the manifest gets the zero marker;
* pin gets the collection generation read before the stretch's lookups and puts; a blob is
  claimed as put (may create its entry) only if put after the generation handed over, so a
  collection between put and pin makes pin refuse and the claim is put again;
* on failure or cancellation every job this ingest started is settled before the exception
  leaves `run`, so the Engine's revert txn cannot race a late pin.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import stores.errors as store_errors
from cas_glance import blobfmt
from cas_glance.errors import BadRequest, PayloadTooLarge, StorageFull, StoreFailure
from cas_glance.index import ChunkRef

if TYPE_CHECKING:
    from cas_glance.engine import Engine

log = logging.getLogger(__name__)

STRETCH = 8 << 20  # bytes of image per pin txn (an upload alone; less when many share memory)
MIN_STRETCH = 2 << 20
STRETCH_BUDGET = 128 << 20  # raw bytes of open stretches, shared by all running uploads
BATCH = 16  # new chunks per store job (each job costs thread wake-ups: ~1 job per MiB)
REMOTE_BATCH = 4  # per job for a remote store, where puts are round trips, not CPU
MAX_INFLIGHT = 32  # new chunks in store jobs at once
LANE_DEPTH = 8  # blocks queued per lane (an upload alone; less when many share memory)
MIN_LANE_DEPTH = 2
# Blocks queued in lanes, shared by all running uploads. 16 uploads still get a full
# LANE_DEPTH each: at 2 blocks a lane, the lanes ran dry between blocks and 16 x 32 MiB went
# 13% slower at 10% more CPU per GiB (bench --phases concurrent, peak RSS ~280 vs ~400 MiB).
LANE_BUDGET = 128
DYING_WAIT = 60.0  # seconds to wait for a collection to finish with a dying chunk
MAX_PIN_ROUNDS = 50  # re-put rounds per stretch before giving up

# A chunk as the stream chunker hands it out: a view into the received block where it lies
# whole inside one (no copy), else bytes. Blocks are immutable bytes, so views stay valid.
Chunk = bytes | memoryview


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


def _failed(fut: asyncio.Future[Any] | None) -> bool:
    return fut is not None and fut.done() and (fut.cancelled() or fut.exception() is not None)


def _is_zero(chunk: Chunk) -> bool:
    # cheap rejection first: real data rarely starts and ends with NUL
    return chunk[0] == 0 and chunk[-1] == 0 and chunk == bytes(len(chunk))


class _Lane:
    """Ordered calls of `work(items)` on the cpu pool, one job at a time, results in order.

    Items queue up while a job runs; when it ends, the next job takes everything queued (a
    done-callback chains it, so the worker does not wait for the ingest loop). At most
    `depth()` items wait: then `feed` waits (backpressure). A result other than None is
    appended to `results`."""

    def __init__(self, offload: Any, work: Callable[[list[Any]], Any], depth: Callable[[], int]) -> None:
        self._offload, self._work, self.depth = offload, work, depth
        self.queue: list[Any] = []
        self.pending: asyncio.Future[Any] | None = None
        self.results: collections.deque[Any] = collections.deque()
        self.changed = asyncio.Event()  # set whenever a job ends (result or failure)

    def _kick(self, _done: Any = None) -> None:
        if _done is not None:
            self.pending = None
            self.changed.set()
            if _failed(_done):
                self.queue.clear()  # the upload is failing anyway; `_wait` reports it
                self.pending = _done
                return
            result = _done.result()
            if result is not None:
                self.results.append(result)
        if self.pending is None and self.queue:
            items, self.queue = self.queue, []
            self.pending = self._offload.cpu(self._work, items)
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
        if _failed(fut):
            fut.result()  # re-raise what failed the job

    async def feed(self, item: Any) -> None:
        if _failed(self.pending):
            self.pending.result()  # type: ignore[union-attr]  # fail fast: it stopped the lane
        self.queue.append(item)
        self._kick()
        while len(self.queue) >= self.depth():
            await self._wait()

    async def drain(self) -> None:
        """Wait until every item fed has been worked on."""
        while self.queue or (self.pending is not None and not self.pending.done()):
            await self._wait()
        await self._wait()


class _HashLane(_Lane):
    """One hash object's `update` calls in stream order, on their own thread."""

    def __init__(self, engine: Engine, name: str) -> None:
        super().__init__(engine.offload, self._update, lambda: lane_depth(engine))
        self.name, self._h = name, hashlib.new(name)

    def _update(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self._h.update(block)

    async def hexdigest(self) -> str:
        await self.drain()
        return self._h.hexdigest()


def lane_depth(engine: Engine) -> int:
    """Blocks each lane of an upload may queue: an equal share of LANE_BUDGET."""
    return max(MIN_LANE_DEPTH, min(LANE_DEPTH, LANE_BUDGET // max(engine.uploads_active, 1)))


def stretch_bytes(engine: Engine) -> int:
    """Bytes per stretch of an upload: an equal share of STRETCH_BUDGET (two are held)."""
    return max(MIN_STRETCH, min(STRETCH, STRETCH_BUDGET // 2 // max(engine.uploads_active, 1)))


@dataclass
class _Stretch:
    refs: list[tuple[int, str | None, int]] = field(default_factory=list)
    raw: dict[str, Chunk] = field(default_factory=dict)  # for a re-put, see module doc
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
        self.lanes = [_HashLane(engine, "md5"), _HashLane(engine, engine.cfg.hashing_algorithm)]
        # the cut runs beside reading the next block; a consumer task turns its results into
        # stretches as they come, in order; at most LANE_DEPTH blocks are cut but not consumed
        self.cutter = _Lane(engine.offload, self._cut_job, lambda: lane_depth(engine))
        self.cut_outstanding = 0  # blocks fed to the cutter, not yet consumed
        self.cut_freed = asyncio.Event()
        self.consumer: asyncio.Task[None] | None = None
        self.have: set[str] = set()  # digests live at lookup or put by this upload
        self.stretch = _Stretch()
        self.offset = self.size = self.n_chunks = self.n_new = self.stored = 0
        self.batch = REMOTE_BATCH if engine.store.capabilities.remote else BATCH
        self.slots = asyncio.Semaphore(MAX_INFLIGHT // self.batch)
        self.commit: asyncio.Task[None] | None = None
        self.jobs: list[asyncio.Future[Any]] = []  # everything to settle on failure
        self.block_gen = 0  # collection generation read by the latest cut job

    async def run(self, stream: AsyncIterator[bytes]) -> IngestResult:
        try:
            async for block in stream:
                if block:
                    await self._block(bytes(block))
            await self._feed_cutter(None)
            await self.consumer  # type: ignore[misc]  # (started by the first feed)
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
        pending = self.jobs + [lane.pending for lane in (*self.lanes, self.cutter) if lane.pending is not None]
        if self.consumer is not None:
            self.consumer.cancel()  # it may wait for cut results that will never come
            pending.append(self.consumer)
        if self.commit is not None:
            pending.append(self.commit)
        await settle_all([p for p in pending if p is not None])

    async def _block(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.size_cap:
            raise PayloadTooLarge(f"Image exceeds the storage quota or size cap of {self.size_cap} bytes")
        if self.expected is not None and self.size > self.expected:
            raise BadRequest(f"Image data exceeds the announced size of {self.expected} bytes")
        if _failed(self.commit):
            self.commit.result()  # type: ignore[union-attr]  # fail fast, not a stretch late
        for lane in self.lanes:
            await lane.feed(block)
        await self._feed_cutter(block)

    async def _feed_cutter(self, block: bytes | None) -> None:
        if self.consumer is None:
            self.consumer = asyncio.ensure_future(self._consume())
        while True:
            if self.consumer.done():
                self.consumer.result()  # it failed: fail fast (it never ends before the last block)
            if self.cut_outstanding < lane_depth(self.e):
                break
            self.cut_freed.clear()
            await self.cut_freed.wait()
        self.cut_outstanding += 1
        await self.cutter.feed(block)

    async def _consume(self) -> None:
        """Turn cut results into stretch entries and store jobs, in order, until the end."""
        try:
            await self._consume_results()
        finally:
            self.cut_freed.set()  # a feeder waiting for room sees how we ended

    async def _consume_results(self) -> None:
        cutter = self.cutter
        while True:
            if not cutter.results:
                if _failed(cutter.pending):
                    cutter.pending.result()  # type: ignore[union-attr]
                cutter.changed.clear()  # (no await since the check: no result can slip by)
                await cutter.changed.wait()
                continue
            self.block_gen, cut, blocks, ended = cutter.results.popleft()
            batch: list[tuple[str, Chunk]] = []
            for digest, chunk, known in cut:
                batch = await self._chunk(digest, chunk, known, batch)
            await self._submit(batch)
            self.cut_outstanding -= blocks
            self.cut_freed.set()
            if ended:
                return

    def _cut_job(self, blocks: list[bytes | None]) -> tuple[int, list[tuple[str | None, Chunk, bool]], int, bool]:
        """Worker thread: cut, hash, zero test, live lookup of queued blocks (None: the end).
        Returns the collection generation read before the lookup, (digest|None, chunk,
        known) per chunk, how many blocks that was, and whether the stream ended."""
        chunks = [c for b in blocks for c in (self.stream.feed(b) if b is not None else self.stream.finish())]
        digests = [None if _is_zero(c) else blobfmt.digest(c) for c in chunks]
        gen = self.e.index.gc_generation()
        known = self.e.index.known_chunks([d for d in digests if d is not None]) if chunks else set()
        return gen, [(d, c, d in known) for d, c in zip(digests, chunks)], len(blocks), blocks[-1] is None

    async def _chunk(self, digest: str | None, chunk: Chunk, known: bool,
                     batch: list[tuple[str, Chunk]]) -> list[tuple[str, Chunk]]:
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
                    if len(batch) >= self.batch:
                        await self._submit(batch)
                        batch = []
        if st.size >= stretch_bytes(self.e):
            await self._submit(batch)
            batch = []
            await self._end_stretch()
        return batch

    async def _submit(self, batch: list[tuple[str, Chunk]]) -> None:
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

    def _store_job(self, batch: list[tuple[str, Chunk]]) -> list[tuple[str, int, int]]:
        """Worker thread: encode (zstd releases the GIL) and put the blobs (all at once where
        the store can: one write for the batch)."""
        blobs = [(digest, blobfmt.encode_parts(raw, self.e.cfg.zstd_level)) for digest, raw in batch]
        put_many = getattr(self.e.store, "put_many", None)
        if put_many is not None:
            store_call(put_many, blobs)  # header and payload gathered by the write, not joined
        else:
            for digest, (header, payload) in blobs:
                store_call(self.e.store.put, digest, header + payload)
        return [(digest, len(header) + len(payload), blobfmt.codec_of(header))
                for digest, (header, payload) in blobs]

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

    async def _reput(self, digests: list[str], raw: dict[str, Chunk]) -> tuple[int, dict[str, tuple[int, int]]]:
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
