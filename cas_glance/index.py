"""The index: one LMDB environment, the only module that opens LMDB transactions.

Named databases (msgpack values unless noted):
  meta      b"format" -> format version; b"chunker" -> chunker params (refused on mismatch)
  images    image id -> record (opaque below `id` and `status`)
  manifest  id ‖ 0x00 ‖ u64be offset -> 32 raw digest bytes ‖ u32be length (raw bytes, not
            msgpack); an all-zero digest is the zero-chunk marker: "synthesize zeros"
  chunks    32 raw digest bytes -> [refcount, stored size, codec, state, zero_since, raw len]
  gc        32 raw digest bytes -> time the chunk's refcount reached 0

Invariants (each write method documents the one it keeps):
* refcount of a chunk == number of manifest entries naming it; an entry is in `gc` exactly when
  its refcount is 0;
* a manifest entry only names a chunk whose entry exists (and whose blob the caller flushed);
* a `dying` chunk never gains a reference (pin refuses it, the caller re-puts after the drop);
* the in-process record cache equals `images` minus deleted/pending_delete records; it is
  updated under the write lock right after each commit, so it follows commit order. It is a
  `domain.listing.Listing`, which also keeps the list orders GET /v2/images walks (`listing`).
The map grows automatically: MapFullError aborts the txn, the map doubles (with no txn of
this process active: `indexfmt.Gate`), and the txn function runs again from scratch.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from cas_glance.domain.listing import Listing
from cas_glance.errors import Conflict, Gone, IndexMismatch, NotFound
from cas_glance.indexfmt import (
    DYING,
    FORMAT_VERSION,
    HIDDEN,
    LIVE,
    MVAL,
    ZERO_DIGEST,
    ChunkRef,
    Gate,
    NeedPut,
    Record,
    mentry,
    mkey,
    mprefix,
    pack,
    unpack,
    when,
)

__all__ = ["ZERO_DIGEST", "ChunkRef", "Index"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_GEN = b"gcgen"  # meta: collection generation, bumped by every drop_dying that drops


class Index:
    """Image records, manifests and chunk reference counts in one LMDB environment."""

    def __init__(self, path: str | Path, *, chunker_params: Record | None, map_size: int = 1 << 30,
                 sync: bool = True) -> None:
        """Open (create) the index. `chunker_params` None skips the check (read-only tools)."""
        Path(path).mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=map_size, max_dbs=8, sync=sync, metasync=sync)
        self._db = {n: self._env.open_db(n.encode()) for n in ("meta", "images", "manifest", "chunks", "gc")}
        self._gate = Gate()
        self._wlock = threading.Lock()
        self._check_meta(chunker_params)
        # the record cache, kept with its listing orders (domain.listing); `_list_lock` orders
        # cache writes (worker threads) against page walks (the event loop)
        self._list_lock = threading.Lock()
        self._listing = Listing([rec for rec in self.iter_images_all()
                                 if rec.get("status") not in HIDDEN])
        self._cache: dict[str, Record] = self._listing.by_id  # same dict: lock-free get_image

    def close(self) -> None:
        self._env.close()

    # -- transaction plumbing ------------------------------------------------------------
    def _read(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        with self._gate.shared(), self._env.begin() as txn:
            return fn(txn)

    def _write(self, fn: Callable[[lmdb.Transaction], T], after: Callable[[T], None] | None = None) -> T:
        """Run `fn` in one write txn (rerun from scratch after growing a full map); then
        `after(result)` under the same lock, so cache updates follow commit order."""
        with self._wlock:
            while True:
                try:
                    with self._gate.shared(), self._env.begin(write=True) as txn:
                        result = fn(txn)
                    break
                except lmdb.MapFullError:
                    self._grow()
            if after is not None:
                after(result)
            return result

    def _grow(self) -> None:
        size = self._env.info()["map_size"] * 2
        log.info("index: LMDB map full, growing to %d MiB", size >> 20)
        self._gate.exclusive(lambda: self._env.set_mapsize(size))

    def _check_meta(self, params: dict[str, object] | None) -> None:
        """Record format + chunker params on first open; refuse a mismatch afterwards."""
        def txn_fn(txn: lmdb.Transaction) -> None:
            db = self._db["meta"]
            fmt, stored = txn.get(b"format", db=db), txn.get(b"chunker", db=db)
            if fmt is None:
                txn.put(b"format", pack(FORMAT_VERSION), db=db)
            elif unpack(fmt) != FORMAT_VERSION:
                raise IndexMismatch(f"index format version {unpack(fmt)} on disk, this code "
                                    f"reads version {FORMAT_VERSION}")
            if params is None:
                return
            if stored is None:
                txn.put(b"chunker", pack(params), db=db)
            elif unpack(stored) != params:
                raise IndexMismatch(f"index was created with chunker parameters {unpack(stored)}, "
                                    f"configured are {params}; changing them would end "
                                    "deduplication against stored data")
        self._write(txn_fn)

    # -- image records -------------------------------------------------------------------
    def _cache_put(self, rec: Record | None) -> None:
        if rec is None:
            return
        with self._list_lock:
            if rec.get("status") in HIDDEN:
                self._listing.remove(rec["id"])
            else:
                self._listing.put(rec)

    def _record(self, txn: lmdb.Transaction, image_id: str) -> Record | None:
        raw = txn.get(image_id.encode(), db=self._db["images"])
        if raw is None:
            return None
        rec: Record = unpack(raw)
        return rec

    def _store(self, txn: lmdb.Transaction, rec: Record) -> Record:
        raw = pack(rec)
        txn.put(rec["id"].encode(), raw, db=self._db["images"])
        copy: Record = unpack(raw)  # the cache holds its own copy, never the caller's dict
        return copy

    def _mutate(self, txn: lmdb.Transaction, rec: Record, mutate: Callable[[Record], Record]) -> Record:
        new = mutate(rec)
        if new.get("id") != rec["id"]:
            raise ValueError(f"mutate changed the image id {rec['id']!r} -> {new.get('id')!r}")
        return self._store(txn, new)

    def _visible(self, txn: lmdb.Transaction, image_id: str) -> Record:
        rec = self._record(txn, image_id)
        if rec is None or rec.get("status") in HIDDEN:
            raise NotFound(f"No image found with ID {image_id}")
        return rec

    def create_image(self, record: Record) -> Record:
        """Insert a new record. Txn invariant: ids are unique (Conflict), also against deleted
        records, whose ids Glance never reuses."""
        def txn_fn(txn: lmdb.Transaction) -> Record:
            if self._record(txn, record["id"]) is not None:
                raise Conflict(f"Image with identifier {record['id']} already exists!")
            return self._store(txn, record)
        return self._write(txn_fn, self._cache_put)

    def get_image(self, image_id: str) -> Record | None:
        """The cached record; None when missing, deleted or pending_delete. Do not mutate."""
        return self._cache.get(image_id)

    def list_images(self) -> list[Record]:
        """Every record not deleted/pending_delete (cached dicts: treat them immutable)."""
        with self._list_lock:
            return self._listing.records()

    def listing(self, fn: Callable[[Listing], T]) -> T:
        """`fn(listing)` over the record cache and its kept orders (`domain.listing`), with
        cache writes held off meanwhile: keep `fn` short (one page) and do not keep iterators."""
        with self._list_lock:
            return fn(self._listing)

    def update_image(self, image_id: str, mutate: Callable[[Record], Record]) -> Record:
        """Compare-and-swap: `mutate` sees the committed record inside the write txn."""
        return self._write(lambda txn: self._mutate(txn, self._visible(txn, image_id), mutate),
                           self._cache_put)

    def delete_image(self, image_id: str, mutate: Callable[[Record], Record]) -> Record:
        """`mutate` sets status deleted or pending_delete. Txn invariant: 'deleted' releases
        every reference of the image and drops its manifest in the same txn; pending_delete
        keeps both until purge_pending."""
        def txn_fn(txn: lmdb.Transaction) -> Record:
            rec = self._mutate(txn, self._visible(txn, image_id), mutate)
            if rec.get("status") not in HIDDEN:
                raise ValueError(f"delete mutate left image {image_id} in status {rec.get('status')!r}")
            if rec["status"] == "deleted":
                self._release(txn, image_id)
            return rec
        return self._write(txn_fn, self._cache_put)

    def iter_images_all(self) -> Iterator[Record]:
        """Every record, including deleted and pending_delete (read in batches)."""
        for _key, raw in self._scan("images"):
            yield unpack(raw)

    def saving_images(self) -> list[str]:
        """Ids left in 'saving' (start-up recovery aborts them: no upload survives a restart)."""
        return [r["id"] for r in list(self._cache.values()) if r.get("status") == "saving"]

    def pending_delete_images(self, older_than: float) -> list[Record]:
        """pending_delete records whose deleted_at (epoch or ISO time) is <= older_than."""
        return [r for r in self.iter_images_all()
                if r.get("status") == "pending_delete" and when(r.get("deleted_at")) <= older_than]

    def purge_pending(self, image_id: str) -> Record | None:
        """Txn invariant: a pending_delete image's refs and manifest go and it becomes 'deleted'
        in one txn; anything else (already purged, restored) is left alone (None)."""
        def txn_fn(txn: lmdb.Transaction) -> Record | None:
            rec = self._record(txn, image_id)
            if rec is None or rec.get("status") != "pending_delete":
                return None
            self._release(txn, image_id)
            return self._store(txn, dict(rec, status="deleted"))
        return self._write(txn_fn)

    # -- uploads -------------------------------------------------------------------------
    def _saving(self, txn: lmdb.Transaction, image_id: str) -> Record:
        rec = self._record(txn, image_id)
        if rec is None or rec.get("status") != "saving":
            state = "missing" if rec is None else rec.get("status")
            raise Gone(f"Image {image_id} is no longer being uploaded (status {state})")
        return rec

    def pin(self, image_id: str, entries: Iterable[ChunkRef], since_gen: int | None = None) -> list[str]:
        """Append a manifest stretch and take one reference per entry, in one txn, only while
        the image is 'saving' (else Gone). Absent chunk: created live at 1 if the caller put
        it (else returned). Live: +1. Dying: returned. If anything is returned nothing was
        committed: the caller waits until those are not dying, re-puts, retries.
        `since_gen`: the collection generation the caller read before looking up / putting
        these chunks; if a collection dropped entries since, an absent chunk is returned even
        when the caller put it (the collection may have deleted that blob after the put)."""
        entries = list(entries)
        try:
            self._write(lambda txn: self._pin_txn(txn, image_id, entries, since_gen))
        except NeedPut as need:
            return need.digests
        return []

    def _pin_txn(self, txn: lmdb.Transaction, image_id: str, entries: list[ChunkRef],
                 since_gen: int | None) -> None:
        self._saving(txn, image_id)
        prefix, chunks, need = mprefix(image_id), self._db["chunks"], []
        stale = since_gen is not None and self._gen(txn) != since_gen
        for e in entries:
            raw = ZERO_DIGEST if e.digest is None else bytes.fromhex(e.digest)
            txn.put(mkey(prefix, e.offset), MVAL.pack(raw, e.length), db=self._db["manifest"])
            if e.digest is None:
                continue
            val = txn.get(raw, db=chunks)
            if val is None:
                if e.put and not stale:
                    txn.put(raw, pack([1, e.stored, e.codec, LIVE, 0, e.length]), db=chunks)
                else:
                    need.append(e.digest)
            elif unpack(val)[3] == DYING:
                need.append(e.digest)
            else:
                self._incref(txn, raw, unpack(val))
        if need:
            raise NeedPut(sorted(set(need)))

    def finish_upload(self, image_id: str, mutate: Callable[[Record], Record]) -> Record:
        """Txn invariant: status (saving -> whatever mutate sets) and hashes flip together, and
        only while the image is still 'saving' (else Gone: deleted during the upload)."""
        return self._write(lambda txn: self._mutate(txn, self._saving(txn, image_id), mutate),
                           self._cache_put)

    def abort_upload(self, image_id: str, mutate: Callable[[Record], Record]) -> Record | None:
        """Txn invariant: a 'saving' image loses every pinned reference and its manifest, and
        `mutate` reverts its status, in one txn. An image that left 'saving' meanwhile is left
        alone (deleted: already released; pending_delete: purge_pending releases)."""
        def txn_fn(txn: lmdb.Transaction) -> Record | None:
            rec = self._record(txn, image_id)
            if rec is None or rec.get("status") != "saving":
                return rec
            self._release(txn, image_id)
            return self._mutate(txn, rec, mutate)
        return self._write(txn_fn, self._cache_put)

    # -- reads ---------------------------------------------------------------------------
    def manifest(self, image_id: str, start: int = 0) -> Iterator[tuple[int, str | None, int]]:
        """(offset, digest or None for zeros, length) from the chunk covering `start` on."""
        while True:
            batch = self.manifest_batch(image_id, start, 1024)
            yield from batch
            if len(batch) < 1024:
                return
            start = batch[-1][0] + batch[-1][2]

    def manifest_batch(self, image_id: str, start: int, limit: int) -> list[tuple[int, str | None, int]]:
        """Up to `limit` entries from the one covering `start` (one cursor seek, short txn)."""
        prefix = mprefix(image_id)

        def txn_fn(txn: lmdb.Transaction) -> list[tuple[int, str | None, int]]:
            cur = txn.cursor(db=self._db["manifest"])
            target = mkey(prefix, start)
            found = cur.set_range(target)
            exact = found and cur.key() == target
            # otherwise the covering chunk starts before `start`: step back one entry (and
            # forward again if that left this image's manifest)
            if not exact and not ((cur.prev() if found else cur.last()) and cur.key().startswith(prefix)):
                cur.set_range(target)
            out: list[tuple[int, str | None, int]] = []
            while len(out) < limit and cur.key().startswith(prefix):
                entry = mentry(cur.key(), cur.value())
                if entry[0] + entry[2] > start:
                    out.append(entry)
                if not cur.next():
                    break
            return out
        return self._read(txn_fn)

    def _chunk(self, txn: lmdb.Transaction, digest: str) -> list[Any] | None:
        val = txn.get(bytes.fromhex(digest), db=self._db["chunks"])
        return None if val is None else unpack(val)

    def has_chunk(self, digest: str) -> bool:
        """A live entry exists (its blob is in the store)."""
        return digest in self.known_chunks([digest])

    def known_chunks(self, digests: Iterable[str]) -> set[str]:
        """The subset of `digests` with a live entry, in one read txn. Only a hint: by pin time
        one may be dying, which pin reports."""
        def txn_fn(txn: lmdb.Transaction) -> set[str]:
            return {d for d in digests if (c := self._chunk(txn, d)) is not None and c[3] == LIVE}
        return self._read(txn_fn)

    def chunk_state(self, digest: str) -> str | None:
        """'live', 'dying' or None (no entry)."""
        c = self._read(lambda txn: self._chunk(txn, digest))
        return None if c is None else ("dying" if c[3] == DYING else "live")

    def iter_chunks(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(digest, {refcount, stored, codec, state, zero_since, length}) for every entry."""
        for key, raw in self._scan("chunks"):
            rc, stored, codec, state, since, length = unpack(raw)
            yield key.hex(), {"refcount": rc, "stored": stored, "codec": codec,
                              "state": "dying" if state == DYING else "live",
                              "zero_since": since, "length": length}

    def _scan(self, name: str, batch: int = 4096) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of a DB, in short read txns (a long txn would stall map growth)."""
        after = b""
        while True:
            def txn_fn(txn: lmdb.Transaction, after: bytes = after) -> list[tuple[bytes, bytes]]:
                cur = txn.cursor(db=self._db[name])
                ok = cur.set_range(after) if after else cur.first()
                if ok and after and cur.key() == after:
                    ok = cur.next()
                out: list[tuple[bytes, bytes]] = []
                while ok and len(out) < batch:
                    out.append((cur.key(), cur.value()))
                    ok = cur.next()
                return out
            rows = self._read(txn_fn)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    # -- reference counting (inside write txns) -----------------------------------------
    def _incref(self, txn: lmdb.Transaction, raw: bytes, entry: list[Any]) -> None:
        if entry[0] == 0:
            txn.delete(raw, db=self._db["gc"])
            entry[4] = 0
        entry[0] += 1
        txn.put(raw, pack(entry), db=self._db["chunks"])

    def _decref(self, txn: lmdb.Transaction, raw: bytes, now: float) -> None:
        val = txn.get(raw, db=self._db["chunks"])
        if val is None:
            log.error("index: manifest names chunk %s which has no entry", raw.hex())
            return
        entry = unpack(val)
        entry[0] -= 1
        if entry[0] <= 0:
            entry[0], entry[4] = 0, now
            txn.put(raw, pack(now), db=self._db["gc"])
        txn.put(raw, pack(entry), db=self._db["chunks"])

    def _release(self, txn: lmdb.Transaction, image_id: str) -> int:
        """Drop the image's manifest, one reference per entry. Returns entries dropped."""
        prefix, now, n = mprefix(image_id), time.time(), 0
        cur = txn.cursor(db=self._db["manifest"])
        if not cur.set_range(prefix):
            return 0
        while cur.key().startswith(prefix):
            raw, _length = MVAL.unpack(cur.value())
            if raw != ZERO_DIGEST:
                self._decref(txn, raw, now)
            n += 1
            if not cur.delete():
                break
        return n

    # -- collection primitives (used by gc.py) -------------------------------------------
    def zero_ref_chunks(self, older_than: float) -> list[str]:
        """Digests whose refcount has been 0 since at or before `older_than` (a snapshot)."""
        return [k.hex() for k, v in self._scan("gc") if unpack(v) <= older_than]

    def mark_dying(self, digests: Iterable[str], older_than: float) -> list[str]:
        """Txn invariant: only entries still at refcount 0, live, and zero since <= older_than
        become dying (rechecked here: a pin may have revived one). Returns those marked;
        only their blobs may be deleted."""
        def txn_fn(txn: lmdb.Transaction) -> list[str]:
            marked = []
            for d in digests:
                c = self._chunk(txn, d)
                if c is not None and c[0] == 0 and c[3] == LIVE and c[4] <= older_than:
                    c[3] = DYING
                    txn.put(bytes.fromhex(d), pack(c), db=self._db["chunks"])
                    marked.append(d)
            return marked
        return self._write(txn_fn)

    def drop_dying(self, digests: Iterable[str]) -> int:
        """Txn invariant: after the blobs are deleted, entries still dying are dropped (chunk
        and gc rows); pin never revives a dying entry, so nothing points at them."""
        def txn_fn(txn: lmdb.Transaction) -> int:
            n = 0
            for d in digests:
                c = self._chunk(txn, d)
                if c is not None and c[3] == DYING:
                    raw = bytes.fromhex(d)
                    txn.delete(raw, db=self._db["chunks"])
                    txn.delete(raw, db=self._db["gc"])
                    n += 1
            if n:
                txn.put(_GEN, pack(self._gen(txn) + 1), db=self._db["meta"])
            return n
        return self._write(txn_fn)

    def _gen(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(_GEN, db=self._db["meta"])
        return 0 if raw is None else int(unpack(raw))

    def gc_generation(self) -> int:
        """How many drop_dying txns dropped something. An upload reads it before looking up
        or putting a stretch's chunks and hands it to pin (see pin)."""
        return self._read(self._gen)

    def mark_orphans_dying(self, digests: Iterable[str]) -> list[str]:
        """Txn invariant: an orphan blob (no entry) gets a dying entry at refcount 0 before
        the sweep deletes it, so a pin racing the sweep waits / re-puts as for a collection.
        Digests that have an entry are left alone. Returns those marked."""
        def txn_fn(txn: lmdb.Transaction) -> list[str]:
            marked = []
            for d in digests:
                raw = bytes.fromhex(d)
                if txn.get(raw, db=self._db["chunks"]) is None:
                    txn.put(raw, pack([0, 0, 0, DYING, 0, 0]), db=self._db["chunks"])
                    txn.put(raw, pack(0.0), db=self._db["gc"])
                    marked.append(d)
            return marked
        return self._write(txn_fn)

    def rebuild_refcounts(self) -> int:
        """Txn invariant (repair): every refcount equals the number of manifest entries of
        images that are not deleted naming the chunk, and `gc` lists exactly the entries at
        0, all in one txn. Returns how many entries changed."""
        def txn_fn(txn: lmdb.Transaction) -> int:
            counts = self._manifest_counts(txn)
            changed, now = 0, time.time()
            for raw, val in list(txn.cursor(db=self._db["chunks"])):
                entry = unpack(val)
                want = counts.get(raw, 0)
                if entry[0] == want and (want == 0) == (txn.get(raw, db=self._db["gc"]) is not None):
                    continue
                if want == 0:
                    entry[4] = entry[4] if entry[0] == 0 and entry[4] else now
                    txn.put(raw, pack(entry[4]), db=self._db["gc"])
                else:
                    entry[4] = 0
                    txn.delete(raw, db=self._db["gc"])
                entry[0] = want
                txn.put(raw, pack(entry), db=self._db["chunks"])
                changed += 1
            return changed
        return self._write(txn_fn)

    def _manifest_counts(self, txn: lmdb.Transaction) -> dict[bytes, int]:
        """Raw digest -> manifest entries naming it, over images not deleted."""
        counts: dict[bytes, int] = {}
        live_prefixes = {mprefix(k.decode()) for k, v in txn.cursor(db=self._db["images"])
                         if unpack(v).get("status") != "deleted"}
        for key, val in txn.cursor(db=self._db["manifest"]):
            if key[: key.index(b"\x00") + 1] in live_prefixes:
                raw = val[:32]
                if raw != ZERO_DIGEST:
                    counts[raw] = counts.get(raw, 0) + 1
        return counts
