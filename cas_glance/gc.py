"""Garbage collection: reference-counted chunk collection, the orphan sweep, delayed delete
(Glance's scrubber) and start-up recovery of interrupted uploads.

Concern: give back the store space of chunks no image needs, never the space of one it does.

The ordering rule (DESIGN.md) and why this protocol keeps it:
  R1 a blob is in the store before any index entry points to it (ingest: put+flush, then pin);
  R2 a blob leaves the store only after the index says nothing points to it and the grace
     period has passed;
  R3 an ingest racing a collection never ends up pointing at a deleted blob.
A chunk entry is `live` or `dying`. One collection:
  txn 1  `mark_dying(candidates, older_than)` marks only entries that, *inside the txn*, are
         live, at refcount 0 and at 0 since `now - grace` (a pin may have revived one since the
         snapshot: it is skipped);
  store  delete the blobs of exactly the entries txn 1 marked (plus entries already dying
         from an interrupted run); a missing blob is fine (delete is idempotent);
  txn 2  `drop_dying(deleted)` drops the entries that are still dying.
R2 holds because a blob is deleted only between txn 1 and txn 2, while its entry is dying, and
pin never adds a reference to a dying entry: the refcount is 0 from txn 1 to txn 2, so no
manifest names the chunk while its blob goes. R3: an upload may have looked a chunk up, or put
its blob, *before* a collection deleted that blob and dropped its entry, and pin only then. So
txn 2 bumps the index's collection generation, the upload reads the generation before its
lookups and puts and hands it to pin, and pin creates an absent entry only if the generation
is unchanged (no drop since: the blob the caller put is still there) and the caller put it;
otherwise, and for dying entries, it returns the digests: the caller waits for the drop,
reads the generation, re-puts, and pins again claiming only blobs put after that read.
tests/gc/test_gc_races.py forces each interleaving; test_gc_stress.py runs them at random.
Only one collection runs at a time per data directory (`collection_lock`, an flock released
by the kernel when its holder dies), so "entries already dying" always belong to a run that is
over: finishing them cannot delete a blob that someone re-put after another run dropped it.

The orphan sweep deletes blobs that no index entry knows (a crash between put and pin) once
their mtime is older than the grace period. An upload puts blobs before it pins them (every
STRETCH bytes, a few MiB: seconds), so `grace` must be much longer than that; the default
(gc_grace_seconds, an hour) is. A blob that already existed is not rewritten by a put (its
mtime stays old), so the sweep also goes through the protocol: txn 1 gives each orphan a dying
entry (only if it still has none), then the blob is deleted, then txn 2 drops it.

A store that deletes locations rather than bytes (the pack store) gets its space back at the
end of each collection: `store.compact()` removes packs no blob lives in and rewrites sparse
ones (stores/pack.py). Blobs are deleted a slice at a time with `delete_many` where a store
has it (one txn per slice, not one per blob).

The collector never needs the server's in-process record cache: it touches chunk entries and
pending_delete -> deleted records, both of which the cache never holds, so `cas-glance gc` can
run in its own process beside `serve` (LMDB is multi-process safe).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cas_glance.domain.lifecycle import revert_upload

log = logging.getLogger(__name__)

BATCH = 10_000  # chunk entries per plan/execute round (bounds memory at any index size)
DELETE_WORKERS = 8  # concurrent store deletes (remote stores are latency bound)
LOCK_NAME = "gc.lock"


# -- data -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkRow:
    """What a plan needs of one chunk entry."""

    digest: str
    refcount: int
    stored: int  # encoded bytes in the store
    state: str  # "live" | "dying"
    zero_since: float  # epoch seconds the refcount reached 0 (meaningless above 0)


@dataclass(frozen=True)
class PendingRow:
    """A pending_delete image and when it was deleted (epoch seconds)."""

    image_id: str
    deleted_at: float


@dataclass(frozen=True)
class GcSnapshot:
    chunks: tuple[ChunkRow, ...] = ()
    pending: tuple[PendingRow, ...] = ()


@dataclass(frozen=True)
class GcPlan:
    """What one collection round will do; `execute_gc` re-checks all of it in txns."""

    older_than: float  # chunks at refcount 0 since at or before this are collectable
    collect: tuple[ChunkRow, ...] = ()  # live, refcount 0 past grace: mark dying, delete, drop
    resume: tuple[ChunkRow, ...] = ()  # dying, left by an interrupted run: delete, drop
    purge: tuple[str, ...] = ()  # pending_delete images past scrub_time: drop their refs

    @property
    def chunks(self) -> int:
        return len(self.collect) + len(self.resume)

    @property
    def bytes(self) -> int:
        return sum(c.stored for c in self.collect) + sum(c.stored for c in self.resume)


@dataclass
class GcReport:
    """What a collection did (or, dry, would do). Counters add up across rounds."""

    images_purged: int = 0
    chunks_planned: int = 0
    bytes_planned: int = 0
    chunks_revived: int = 0  # planned, but a pin took a reference before txn 1
    blobs_deleted: int = 0
    bytes_freed: int = 0
    entries_dropped: int = 0
    delete_errors: int = 0
    orphans_deleted: int = 0
    orphan_bytes: int = 0
    temp_files: int = 0
    packs_removed: int = 0  # pack files compacted away (pack store only)
    pack_bytes_reclaimed: int = 0
    skipped_locked: bool = False

    def add(self, other: GcReport) -> GcReport:
        for f in fields(self):
            if f.type in ("int", int):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.skipped_locked = self.skipped_locked or other.skipped_locked
        return self


# -- planning (pure) ---------------------------------------------------------------------
def plan_gc(snapshot: GcSnapshot, now: float, grace: float, scrub_time: float = 0.0) -> GcPlan:
    """Pure: which entries have been at refcount 0 longer than `grace` seconds (collect),
    which are dying already (resume), which pending_delete images are past `scrub_time`."""
    older_than = now - grace
    collect = tuple(c for c in snapshot.chunks
                    if c.state == "live" and c.refcount == 0 and c.zero_since <= older_than)
    resume = tuple(c for c in snapshot.chunks if c.state == "dying")
    purge = tuple(p.image_id for p in snapshot.pending if p.deleted_at <= now - scrub_time)
    return GcPlan(older_than, collect, resume, purge)


# -- snapshots (index reads) -------------------------------------------------------------
def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return 0.0


def pending_snapshot(index: Any) -> GcSnapshot:
    """Every pending_delete image (the plan decides which are past scrub_time)."""
    rows = tuple(PendingRow(r["id"], _epoch(r.get("deleted_at")))
                 for r in index.pending_delete_images(float("inf")))
    return GcSnapshot(pending=rows)


def chunk_snapshots(index: Any, batch: int = BATCH) -> Iterator[GcSnapshot]:
    """Entries at refcount 0 (live or dying), `batch` at a time, in digest order."""
    rows: list[ChunkRow] = []
    for digest, e in index.iter_chunks():
        if e["refcount"] == 0:
            rows.append(ChunkRow(digest, 0, e["stored"], e["state"], float(e["zero_since"])))
            if len(rows) >= batch:
                yield GcSnapshot(chunks=tuple(rows))
                rows = []
    if rows:
        yield GcSnapshot(chunks=tuple(rows))


# -- execution (ordering rule) -----------------------------------------------------------
def _delete_all(store: Any, rows: list[ChunkRow], workers: int) -> tuple[list[ChunkRow], int]:
    """Delete the blobs, `workers` at a time (slices, not one future per blob); returns
    (rows whose delete succeeded, failures). A failed one stays dying: the next run retries."""
    def some(part: list[ChunkRow]) -> list[ChunkRow]:
        if hasattr(store, "delete_many"):  # one txn for the slice (pack store)
            try:
                store.delete_many([row.digest for row in part])
                return part
            except Exception as exc:  # noqa: BLE001  (counted; the entries stay dying)
                log.warning("gc: deleting %d blob(s) failed: %s", len(part), exc)
                return []
        ok = []
        for row in part:
            try:
                store.delete(row.digest)
                ok.append(row)
            except Exception as exc:  # noqa: BLE001  (counted; the entry stays dying)
                log.warning("gc: deleting blob %s failed: %s", row.digest, exc)
        return ok
    step = max(1, -(-len(rows) // (workers * 4)))
    parts = [rows[i:i + step] for i in range(0, len(rows), step)]
    if workers <= 1 or len(parts) < 2:
        done = [some(p) for p in parts]
    else:
        with ThreadPoolExecutor(min(workers, len(parts)), thread_name_prefix="cas-gc") as pool:
            done = list(pool.map(some, parts))
    ok = [r for part in done for r in part]
    return ok, len(rows) - len(ok)


def execute_gc(index: Any, store: Any, plan: GcPlan, *, workers: int = DELETE_WORKERS) -> GcReport:
    """Run a plan under the ordering rule (module doc): purge, txn 1, deletes, txn 2.
    The caller holds the collection lock."""
    report = GcReport(chunks_planned=plan.chunks, bytes_planned=plan.bytes)
    for image_id in plan.purge:
        if index.purge_pending(image_id) is not None:
            report.images_purged += 1
    marked = set(index.mark_dying([c.digest for c in plan.collect], plan.older_than))
    report.chunks_revived = len(plan.collect) - len(marked)
    # resume: only entries still dying (no run but ours can drop them: we hold the lock)
    doomed = [c for c in plan.collect if c.digest in marked]
    doomed += [c for c in plan.resume if index.chunk_state(c.digest) == "dying"]
    deleted, report.delete_errors = _delete_all(store, doomed, workers)
    report.blobs_deleted = len(deleted)
    report.bytes_freed = sum(c.stored for c in deleted)
    if deleted:
        report.entries_dropped = index.drop_dying([c.digest for c in deleted])
    return report


# -- orphan sweep ------------------------------------------------------------------------
def find_orphans(index: Any, store: Any, older_than: float) -> Iterator[Any]:
    """Blobs (BlobInfo) no index entry knows, last written at or before `older_than`.
    A merge of two digest-ordered listings: the store's and the index's."""
    entries = (d for d, _e in index.iter_chunks())
    known = next(entries, None)
    for info in store.list():
        while known is not None and known < info.key:
            known = next(entries, None)
        if info.key != known and info.mtime <= older_than:
            yield info


def sweep_orphans(index: Any, store: Any, now: float, grace: float, *,
                  dry_run: bool = False, batch: int = 1000) -> GcReport:
    """Delete orphan blobs older than `grace` through the collection protocol (a dying entry
    first, so a racing pin waits or re-puts), and stale temp files of the store."""
    report = GcReport()
    orphans: list[Any] = []
    for info in find_orphans(index, store, now - grace):
        orphans.append(info)
        if len(orphans) >= batch:
            report.add(_sweep_batch(index, store, orphans, dry_run))
            orphans = []
    report.add(_sweep_batch(index, store, orphans, dry_run))
    sweep_temp = getattr(store, "sweep_temp", None)
    if sweep_temp is not None and not dry_run:
        report.temp_files = sweep_temp(max(grace, 60.0))
    return report


def _sweep_batch(index: Any, store: Any, orphans: list[Any], dry_run: bool) -> GcReport:
    if dry_run or not orphans:
        return GcReport(orphans_deleted=len(orphans), orphan_bytes=sum(i.size for i in orphans))
    marked = set(index.mark_orphans_dying([i.key for i in orphans]))  # txn 1
    rows = [ChunkRow(i.key, 0, i.size, "dying", 0.0) for i in orphans if i.key in marked]
    deleted, errors = _delete_all(store, rows, DELETE_WORKERS)
    if deleted:
        index.drop_dying([r.digest for r in deleted])  # txn 2
    return GcReport(orphans_deleted=len(deleted), orphan_bytes=sum(r.stored for r in deleted),
                    delete_errors=errors)


# -- one whole collection ----------------------------------------------------------------
@contextlib.contextmanager
def collection_lock(path: Path | None, *, wait: bool = False) -> Iterator[bool]:
    """Hold the data directory's collection lock (flock: released if the holder dies).
    Yields False when another collection holds it and `wait` is False. None: no lock."""
    if path is None:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the flock


def collect(index: Any, store: Any, *, grace: float, scrub_time: float = 0.0,
            sweep: bool = True, dry_run: bool = False, lock_path: Path | None = None,
            wait: bool = False, clock: Callable[[], float] = time.time,
            batch: int = BATCH, stop: Callable[[], bool] = lambda: False) -> GcReport:
    """Purge pending deletes, collect zero-ref chunks past grace, sweep orphans: the
    scrubber's whole job. `stop()` is asked between batches (a server shutting down).
    Returns what was (dry: would be) done."""
    with collection_lock(lock_path, wait=wait) as held:
        if not held:
            log.info("gc: another collection holds %s; skipped", lock_path)
            return GcReport(skipped_locked=True)
        report = GcReport()
        pending = plan_gc(pending_snapshot(index), clock(), grace, scrub_time)
        report.images_purged = len(pending.purge)
        if not dry_run and pending.purge:
            report.images_purged = execute_gc(index, store, pending).images_purged
        now = clock()  # after the purge: with grace 0 its chunks go in this same run
        for snap in chunk_snapshots(index, batch):
            if stop():
                return report
            plan = plan_gc(snap, now, grace)
            if dry_run:
                report.add(GcReport(chunks_planned=plan.chunks, bytes_planned=plan.bytes))
            elif plan.chunks:
                report.add(execute_gc(index, store, plan))
        if sweep:
            report.add(sweep_orphans(index, store, now, grace, dry_run=dry_run))
        compact = getattr(store, "compact", None)
        if compact is not None and not dry_run and not stop():
            done = compact()  # space of the blobs deleted above comes back here
            report.packs_removed, report.pack_bytes_reclaimed = done.packs_removed, done.bytes_reclaimed
        return report


def finish_dying(index: Any, store: Any, lock_path: Path | None) -> int:
    """Finish entries left dying by a collection that died between its txns (delete blob,
    drop entry), if no collection is running now. Returns entries dropped (-1: locked)."""
    with collection_lock(lock_path) as held:
        if not held:
            return -1
        rows = [ChunkRow(d, 0, e["stored"], "dying", 0.0)
                for d, e in index.iter_chunks() if e["state"] == "dying"]
        return execute_gc(index, store, GcPlan(0.0, resume=tuple(rows))).entries_dropped


# -- start-up recovery -------------------------------------------------------------------
def recover_saving(engine: Any) -> dict[str, int]:
    """Images a crash left `saving` go back to `queued` and release their pins (one txn
    each, index.abort_upload); entries left dying by a crashed collection are finished.
    Call before serving: no upload of this process can be in flight yet."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reverted = 0
    for image_id in engine.index.saving_images():
        rec = engine.index.abort_upload(image_id, lambda r: revert_upload(r, stamp))
        reverted += rec is not None and rec.get("status") == "queued"
    lock = Path(engine.cfg.data_dir) / LOCK_NAME
    dying = finish_dying(engine.index, engine.store, lock)
    if reverted:
        log.warning("start-up recovery: %d upload(s) interrupted by a crash reverted to queued", reverted)
    return {"reverted": reverted, "dying_finished": max(dying, 0)}


# -- periodic collector inside `serve` ---------------------------------------------------
async def run_collector(engine: Any, cfg: Any, stop_event: asyncio.Event) -> None:
    """Collect every cfg.wakeup_time seconds until `stop_event` is set (Glance's scrubber
    daemon); 0 means every second. On stop, a running collection ends after its batch."""
    lock, interval = Path(cfg.data_dir) / LOCK_NAME, max(cfg.wakeup_time, 1)
    # The orphan sweep lists the whole store, and orphans only come from crashes: sweep on
    # the first run after start-up, then every orphan_sweep_interval, not every wakeup.
    last_sweep = -math.inf
    while not stop_event.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
        if stop_event.is_set():
            return
        sweep = time.monotonic() - last_sweep >= cfg.orphan_sweep_interval
        try:
            report = await engine.offload.io(lambda: collect(
                engine.index, engine.store, grace=cfg.gc_grace_seconds, sweep=sweep,
                scrub_time=cfg.scrub_time, lock_path=lock, stop=stop_event.is_set))
            if sweep:
                last_sweep = time.monotonic()
            log.info("collector: %s", _summary(report))
        except Exception:
            log.exception("collector: collection failed; retrying in %ds", cfg.wakeup_time)


def collector_ctx(engine_key: Any, config_key: Any) -> Callable[[Any], AsyncIterator[None]]:
    """An aiohttp cleanup_ctx running `run_collector` for the app's engine; append it
    *after* the engine's own ctx so it stops before the engine closes."""
    async def ctx(app: Any) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_collector(app[engine_key], app[config_key], stop))
        try:
            yield
        finally:
            stop.set()
            await task
    return ctx


# -- `cas-glance gc` ---------------------------------------------------------------------
def _summary(r: GcReport) -> str:
    return (f"purged {r.images_purged} pending_delete image(s); freed {r.blobs_deleted} blob(s), "
            f"{r.bytes_freed} bytes ({r.chunks_revived} revived, {r.delete_errors} delete errors); "
            f"swept {r.orphans_deleted} orphan(s), {r.orphan_bytes} bytes, {r.temp_files} temp file(s); "
            f"compacted {r.packs_removed} pack(s), {r.pack_bytes_reclaimed} bytes")


def _open(cfg: Any) -> tuple[Any, Any]:
    from cas_glance.index import Index
    from stores.registry import build_store

    index = Index(cfg.index_dir, chunker_params=None, map_size=cfg.index_map_size,
                  sync=cfg.fsync != "never")
    return index, build_store(cfg)


def main(cfg: Any, args: argparse.Namespace) -> int:
    """`cas-glance gc [--grace-seconds N] [--dry-run] [--no-sweep]`; safe beside `serve`."""
    grace = cfg.gc_grace_seconds if args.grace_seconds is None else args.grace_seconds
    if grace < 0:
        print("cas-glance gc: --grace-seconds must not be negative")
        return 2
    index, store = _open(cfg)
    try:
        report = collect(index, store, grace=grace, scrub_time=cfg.scrub_time,
                         sweep=not args.no_sweep, dry_run=args.dry_run,
                         lock_path=Path(cfg.data_dir) / LOCK_NAME, wait=True)
    finally:
        index.close()
        store.close()
    if args.dry_run:
        print(f"gc plan (dry run, grace {grace}s): purge {report.images_purged} pending_delete "
              f"image(s); collect {report.chunks_planned} chunk(s), {report.bytes_planned} bytes; "
              f"sweep {report.orphans_deleted} orphan blob(s), {report.orphan_bytes} bytes")
    else:
        print(f"gc (grace {grace}s): {_summary(report)}")
    return 1 if report.delete_errors else 0
