"""PackStore: blobs appended to pack files and located through a small LMDB (the default
file store).

Why: one file per 64 KiB chunk costs 150-250 us of kernel time per create+rename on ext4
(plus a fan-out directory now and then): 2.5-4 CPU-s per GiB. Appending to a pack costs
~20 us per chunk, and a stretch is made durable with one fdatasync of the pack.

Layout under <root>:
  packs/<xy>/<pack id>.pack   pack files, <xy> = first two hex digits of the 16-hex pack id
  packs.lmdb (+ -lock)        where each blob is
A pack starts with MAGIC; each record is REC_MAGIC, the 32-byte key, the u32 blob length and
the blob, so a pack describes itself (a lost location index could be rebuilt from the packs).
Location dbs (binary keys; all big-endian, so cursors walk keys in hex order):
  loc   key(32) -> pack id(8) | offset(8) | length(4) | mtime(4)   offset of the blob bytes
  held  pack id(8) | offset(8) -> key(32)                           the blobs a pack holds
  live  pack id(8) -> count(8) | bytes(8)                           per pack, for compaction

Invariants:
* A location is committed only after the bytes it points at are durable: the pack is
  fdatasynced (and its directory entry fsynced, once) before the txn that records it.
  `put` makes a blob visible at once through an in-memory pending location; `flush` syncs
  the packs holding pending blobs and commits them all in one txn (group commit: concurrent
  flushes queue behind one lock and find their keys already committed).
* A pack is appended to only by the process that created it, which holds an exclusive
  flock on it until it is sealed and none of its locations is pending. New packs are born
  under a temp name, locked, then renamed, so no other process ever sees an unlocked pack
  that is still being written. Compaction and removal touch only packs they can lock.
* Deleting drops the location in one committed txn (so every process sees it before
  `delete` returns); the bytes stay until `compact` rewrites or removes the pack. A pack is
  unlinked only after the txn that moved or dropped its last location committed; a reader
  that still finds the old location gets FileNotFoundError and looks the key up again.
* Keys are digests, so any copy of a key's bytes is as good as any other: a stale read fd
  on an unlinked pack still returns correct bytes, and a second copy of a key is dead space.
* OSError and lmdb.Error never escape: ENOSPC/EDQUOT become StorageFull, the rest StoreError.
"""
from __future__ import annotations

import collections
import fcntl
import heapq
import logging
import os
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar, Union

import lmdb

from stores import layout
from stores.base import BlobInfo, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError
from stores.fs import FSYNC_POLICIES, TEMP_PREFIX, fsync_path, map_oserror

Buffer = Union[bytes, bytearray, memoryview]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAGIC = b"CASPACK1"
REC_MAGIC = b"CASR"
REC_HEAD = struct.Struct(">4s32sI")  # magic, key, blob length
LOC = struct.Struct(">8sQII")  # pack id, blob offset, length, mtime
LIVE = struct.Struct(">QQ")  # count, bytes
PACK_BYTES = 32 << 20  # a pack is sealed once it reaches this size
# Sparse map: LMDB grows the file as it fills, never to map_size, so a large virtual map costs
# nothing and no txn ever meets MapFullError in practice (1 TiB ~ 10^10 locations).
MAP_SIZE = 1 << 40
READ_FDS = 8  # pack fds each reader thread keeps open
IOV_MAX = 1024  # buffers per pwritev (Linux's limit)


def _map_error(exc: Exception, what: str) -> StoreError:
    if isinstance(exc, OSError):
        return map_oserror(exc, what)
    if isinstance(exc, lmdb.MapFullError):
        return StorageFull(f"{what}: location index is full")
    return StoreError(f"{what}: {exc}")


@dataclass(frozen=True)
class Loc:
    pack: bytes  # 8-byte pack id
    offset: int  # of the blob bytes (after the record head)
    length: int
    mtime: int

    def encode(self) -> bytes:
        return LOC.pack(self.pack, self.offset, self.length, self.mtime)

    @property
    def held_key(self) -> bytes:
        """Its key in `held`: pack id | offset, so a pack's blobs are one cursor range."""
        return self.pack + self.offset.to_bytes(8, "big")

    @classmethod
    def decode(cls, raw: bytes) -> Loc:
        return cls(*LOC.unpack(raw))


@dataclass(frozen=True)
class CompactReport:
    packs_removed: int = 0
    packs_rewritten: int = 0
    blobs_moved: int = 0
    bytes_reclaimed: int = 0


class _Pack:
    """A pack this process appends to (or has pending locations in), holding its flock."""

    def __init__(self, pack_id: bytes, path: str, fd: int, new_dir: bool) -> None:
        self.id, self.path, self.fd = pack_id, path, fd
        self.end = len(MAGIC)
        self.writers = 0  # appends in progress (the fd must stay open)
        self.pending = 0  # locations not yet committed
        self.named_durable = False  # its directory entry survives a crash
        self.new_dir = new_dir  # its fan-out directory was created with it (sync packs/ too)


class PackStore:
    """BlobStore over pack files in a local directory; see the module docstring."""

    name = "file"

    def __init__(self, root: str | os.PathLike[str], fsync: str = "batch",
                 pack_bytes: int = PACK_BYTES) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync: must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.root, self.fsync, self.pack_bytes = Path(root), fsync, pack_bytes
        self._packs_dir = os.fspath(self.root / "packs")
        self._lock = threading.Lock()  # writer state below
        self._flush_lock = threading.Lock()  # one commit at a time; also closes sealed packs
        self._current: _Pack | None = None
        self._open: dict[bytes, _Pack] = {}  # current + sealed packs not yet released
        self._pending: dict[str, Loc] = {}
        self._readers = threading.local()
        self._reader_fds: list[collections.OrderedDict[bytes, int]] = []  # every thread's, for close
        self._env: lmdb.Environment | None = None
        self.capabilities = self._open_env()

    # -- start-up ------------------------------------------------------------------------
    def _open_env(self) -> Capabilities:
        sync = self.fsync != "never"
        path = os.fspath(self.root / "packs.lmdb")
        try:
            os.makedirs(self._packs_dir, exist_ok=True)
            self._env = _envs.acquire(path, sync)
            self._dbs()
            probe = os.path.join(self._packs_dir, f"{TEMP_PREFIX}probe-{secrets.token_hex(8)}")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            os.unlink(probe)
        except (OSError, lmdb.Error) as exc:
            reason = f"cannot write to {self.root}: {getattr(exc, 'strerror', None) or exc}"
            log.warning("pack store is read-only: %s", reason)
            self._open_readonly(path)
            return Capabilities(writable=False, reason=reason)
        log.info("pack store at %s (fsync=%s)", self.root, self.fsync)
        return Capabilities()

    def _open_readonly(self, path: str) -> None:
        if self._env is not None:
            _envs.release(self._env)
            self._env = None
        if os.path.exists(path):
            try:
                self._env = _envs.acquire(path, None)
                self._dbs()
            except lmdb.Error as exc:
                log.warning("pack store: cannot read %s: %s", path, exc)
                self._env = None

    def _dbs(self) -> None:
        env = self._env
        assert env is not None
        create = not env.flags()["readonly"]
        self._loc = env.open_db(b"loc", create=create)
        self._held = env.open_db(b"held", create=create)
        self._live = env.open_db(b"live", create=create)

    # -- writes --------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self.put_many([(key, (data,))])

    def put_many(self, items: Iterable[tuple[str, Sequence[Buffer]]]) -> None:
        """`put` of several blobs with one write: their records go to the pack back to back
        (one pwritev, one lock round; the engine's store jobs put 16 chunks at a time).
        Each blob is given as its parts in order (a header and a payload need no join)."""
        todo = []
        for key, blob in items:
            kb = bytes.fromhex(layout.validate_key(key))
            if self._locate(key, kb) is None:  # keys are digests: there is the same bytes
                todo.append((key, kb, blob, sum(len(p) for p in blob)))
        if not todo:
            return
        if not self.capabilities.writable:
            raise StoreError(f"store is read-only: {self.capabilities.reason}")
        try:
            pack, offsets = self._append([(kb, blob, n) for _key, kb, blob, n in todo])
        except OSError as exc:
            raise _map_error(exc, f"put {todo[0][0]}") from exc
        now = int(time.time())
        with self._lock:
            pack.writers -= 1
            for (key, _kb, _blob, n), offset in zip(todo, offsets):
                if key not in self._pending:
                    pack.pending += 1
                self._pending[key] = Loc(pack.id, offset, n, now)
        if self.fsync == "always":
            self.flush([key for key, *_rest in todo])

    def _append(self, records: list[tuple[bytes, Sequence[Buffer], int]]) -> tuple[_Pack, list[int]]:
        """Write records (key, blob parts, blob length) back to back into the current pack;
        returns the pack and each blob's offset, with the pack's `writers` still counted (the
        caller releases it)."""
        parts: list[Buffer] = []
        offsets, size = [], 0
        for kb, blob, n in records:
            parts += (REC_HEAD.pack(REC_MAGIC, kb, n), *blob)
            size += REC_HEAD.size
            offsets.append(size)  # relative to the start, fixed up below
            size += n
        with self._lock:
            pack = self._current
            if pack is None or pack.end + size > self.pack_bytes and pack.end > len(MAGIC):
                pack = self._new_pack()
            start, pack.end = pack.end, pack.end + size
            pack.writers += 1
        try:
            _pwrite_all(pack.fd, parts, start)
        except BaseException:
            with self._lock:
                pack.writers -= 1
            raise
        return pack, [start + o for o in offsets]

    def _new_pack(self) -> _Pack:
        """Seal the current pack and start another (called under self._lock)."""
        pack_id = secrets.token_bytes(8)
        hexid = pack_id.hex()
        folder = os.path.join(self._packs_dir, hexid[:2])
        new_dir = not os.path.isdir(folder)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{hexid}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _pwrite_all(fd, [MAGIC], 0)
            path = os.path.join(folder, f"{hexid}.pack")
            os.rename(tmp, path)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        pack = _Pack(pack_id, path, fd, new_dir)
        self._open[pack_id] = pack
        self._current = pack
        return pack

    def flush(self, keys: Iterable[str]) -> None:
        wanted = [layout.validate_key(k) for k in keys]
        if not wanted:
            return
        with self._flush_lock:
            with self._lock:
                batch = dict(self._pending)
            if batch and any(k in batch for k in wanted):
                self._commit_pending(batch)
            self._release_sealed()

    def _commit_pending(self, batch: dict[str, Loc]) -> None:
        """Sync the packs holding `batch`, then record it in one txn (under the flush lock)."""
        with self._lock:
            packs = [self._open[p] for p in {loc.pack for loc in batch.values()}]
        try:
            self._sync_packs(packs)
            self._write(lambda txn: self._record(txn, batch.items()))
        except (OSError, lmdb.Error) as exc:
            raise _map_error(exc, "flush") from exc
        with self._lock:
            for key, loc in batch.items():
                if self._pending.get(key) == loc:
                    del self._pending[key]
                    self._open[loc.pack].pending -= 1

    def _sync_packs(self, packs: list[_Pack]) -> None:
        if self.fsync == "never":
            return
        for pack in packs:
            os.fdatasync(pack.fd)
            if not pack.named_durable:
                folder = os.path.dirname(pack.path)
                fsync_path(folder)
                if pack.new_dir:
                    fsync_path(self._packs_dir)
                pack.named_durable = True

    def _record(self, txn: lmdb.Transaction, items: Iterable[tuple[str, Loc]]) -> None:
        """Add locations; a key already located keeps its first copy (the new one is dead)."""
        for key, loc in items:
            kb = bytes.fromhex(key)
            if not txn.put(kb, loc.encode(), db=self._loc, overwrite=False):
                continue
            txn.put(loc.held_key, kb, db=self._held)
            self._count(txn, loc.pack, 1, loc.length)

    def _count(self, txn: lmdb.Transaction, pack_id: bytes, count: int, nbytes: int) -> None:
        raw = txn.get(pack_id, db=self._live)
        c, b = LIVE.unpack(raw) if raw else (0, 0)
        txn.put(pack_id, LIVE.pack(c + count, b + nbytes), db=self._live)

    def _release_sealed(self) -> None:
        """Close sealed packs without pending locations or appends (under the flush lock):
        closing the fd drops the flock, and compaction may take the pack from then on."""
        with self._lock:
            done = [p for p in self._open.values()
                    if p is not self._current and p.pending == 0 and p.writers == 0]
            for p in done:
                del self._open[p.id]
        for p in done:
            os.close(p.fd)

    def delete(self, key: str) -> None:
        self.delete_many([key])

    def delete_many(self, keys: Iterable[str]) -> None:
        """Drop the locations of `keys` in one committed txn (missing keys are fine)."""
        kbs = [(k, bytes.fromhex(layout.validate_key(k))) for k in keys]

        def drop(txn: lmdb.Transaction) -> None:
            for _key, kb in kbs:
                raw = txn.pop(kb, db=self._loc)
                if raw is not None:
                    loc = Loc.decode(raw)
                    txn.delete(loc.held_key, db=self._held)
                    self._count(txn, loc.pack, -1, -loc.length)
        # under the flush lock, so a flush cannot commit a pending copy we are dropping
        with self._flush_lock:
            with self._lock:
                for key, _kb in kbs:
                    loc = self._pending.pop(key, None)
                    if loc is not None:
                        self._open[loc.pack].pending -= 1
            try:
                self._write(drop)
            except lmdb.Error as exc:
                raise _map_error(exc, "delete") from exc

    # -- reads ---------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        def read(fd: int, loc: Loc) -> bytes:
            data = os.pread(fd, loc.length, loc.offset)
            _check_read(key, loc, len(data), loc.length)
            return data
        return self._read(key, read)

    def get_into(self, key: str, buffers: list[memoryview]) -> int:
        """Scatter-read the blob into `buffers`, in order, as far as they reach (no copy
        through a bytes object: the reader's hot path). Returns the blob's size, which may be
        more or less than the buffers hold. Raises BlobNotFound when the key is absent."""
        def read(fd: int, loc: Loc) -> int:
            views, room = [], loc.length
            for buf in buffers:
                if room <= 0:
                    break
                views.append(buf[:room])
                room -= len(views[-1])
            _check_read(key, loc, os.preadv(fd, views, loc.offset), loc.length - max(room, 0))
            return loc.length
        return self._read(key, read)

    def _read(self, key: str, read: Callable[[int, Loc], T]) -> T:
        """Locate `key` and `read(fd, loc)` it; a pack removed by compaction between the
        lookup and the open means the blob moved: look it up once more."""
        kb = bytes.fromhex(layout.validate_key(key))
        for _attempt in range(2):
            loc = self._locate(key, kb)
            if loc is None:
                break
            try:
                return read(self._read_fd(loc.pack), loc)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _map_error(exc, f"get {key}") from exc
        raise BlobNotFound(key)

    def _locate(self, key: str, kb: bytes) -> Loc | None:
        """Where the blob is: pending in this process, else committed (for everyone)."""
        loc = self._pending.get(key)  # dict reads are atomic under the GIL
        if loc is not None:
            return loc
        try:
            return self._committed_loc(kb)
        except lmdb.Error as exc:
            raise _map_error(exc, f"lookup {key}") from exc

    def _read_fd(self, pack_id: bytes) -> int:
        """An fd of the pack, from this thread's small LRU (no sharing: no close races)."""
        fds: collections.OrderedDict[bytes, int] | None = getattr(self._readers, "fds", None)
        if fds is None:
            fds = self._readers.fds = collections.OrderedDict()
            with self._lock:
                self._reader_fds.append(fds)
        fd = fds.get(pack_id)
        if fd is not None:
            fds.move_to_end(pack_id)
            return fd
        fd = os.open(self._pack_path(pack_id), os.O_RDONLY | os.O_CLOEXEC)
        fds[pack_id] = fd
        if len(fds) > READ_FDS:
            os.close(fds.popitem(last=False)[1])
        return fd

    def _pack_path(self, pack_id: bytes) -> str:
        hexid = pack_id.hex()
        return os.path.join(self._packs_dir, hexid[:2], f"{hexid}.pack")

    def stat(self, key: str) -> BlobInfo:
        loc = self._locate(key, bytes.fromhex(layout.validate_key(key)))
        if loc is None:
            raise BlobNotFound(key)
        return BlobInfo(key, loc.length, float(loc.mtime))

    def exists(self, key: str) -> bool:
        return self._locate(key, bytes.fromhex(layout.validate_key(key))) is not None

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        after = after or ""
        with self._lock:
            pending = sorted((k, loc) for k, loc in self._pending.items() if k > after)
        pending_infos = (BlobInfo(k, loc.length, float(loc.mtime)) for k, loc in pending)
        seen = ""
        for info in heapq.merge(self._committed(after), pending_infos, key=lambda i: i.key):
            if info.key != seen:  # committed by a flush since the snapshot: listed once
                seen = info.key
                yield info

    def _committed(self, after: str, batch: int = 1024) -> Iterator[BlobInfo]:
        """Committed locations after `after`, read in short txns (a long-lived read txn
        would keep LMDB from reusing pages)."""
        if self._env is None:
            return
        even = after[: len(after) // 2 * 2]
        try:
            start = bytes.fromhex(even)
        except ValueError:
            start = b""
        while True:
            rows = []
            try:
                with self._env.begin(db=self._loc) as txn:
                    cur = txn.cursor()
                    ok = cur.set_range(start)
                    while ok and len(rows) < batch:
                        rows.append((cur.key(), cur.value()))
                        ok = cur.next()
            except lmdb.Error as exc:
                raise _map_error(exc, "list") from exc
            for kb, raw in rows:
                key = kb.hex()
                if key > after:
                    loc = Loc.decode(raw)
                    yield BlobInfo(key, loc.length, float(loc.mtime))
            if len(rows) < batch:
                return
            start = rows[-1][0] + b"\0"  # the smallest key after the last one read

    # -- maintenance ---------------------------------------------------------------------
    def compact(self, max_live_ratio: float = 0.5, stray_age: float = 3600.0) -> CompactReport:
        """Remove packs with no live blob, rewrite packs whose live bytes are at most
        `max_live_ratio` of the file, and remove stray packs (no location ever committed,
        unlocked, older than `stray_age`: left by a writer that crashed). Returns counts."""
        if not self.capabilities.writable or self._env is None:
            return CompactReport()
        report = CompactReport()
        for pack_id, path in self._pack_files():
            with self._lock:
                if pack_id in self._open:
                    continue  # ours, still being written or pending
            try:
                report = _add(report, self._compact_one(pack_id, path, max_live_ratio, stray_age))
            except (OSError, lmdb.Error) as exc:
                raise _map_error(exc, f"compact {pack_id.hex()}") from exc
        return report

    def _pack_files(self) -> Iterator[tuple[bytes, str]]:
        for folder in sorted(os.listdir(self._packs_dir)):
            d = os.path.join(self._packs_dir, folder)
            if len(folder) != 2 or not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if name.endswith(".pack") and len(name) == 21:
                    try:
                        yield bytes.fromhex(name[:16]), os.path.join(d, name)
                    except ValueError:
                        continue

    def _compact_one(self, pack_id: bytes, path: str, ratio: float, stray_age: float) -> CompactReport:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return CompactReport()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return CompactReport()  # another process still writes to it
            st = os.fstat(fd)
            counts = self._live_count(pack_id)
            if counts is None:
                if time.time() - st.st_mtime < stray_age:
                    return CompactReport()
                return self._remove_pack(pack_id, path, st.st_size)
            count, live = counts
            if count == 0:
                return self._remove_pack(pack_id, path, st.st_size)
            if live + count * REC_HEAD.size > ratio * st.st_size:
                return CompactReport()
            with self._flush_lock:  # our copies are synced and recorded before any release
                moved = self._move_live(pack_id, fd)
            counts = self._live_count(pack_id)
            if counts is not None and counts[0] != 0:
                return CompactReport(blobs_moved=moved)  # deleted/put meanwhile: next run
            removed = self._remove_pack(pack_id, path, st.st_size)
            copied = live + count * REC_HEAD.size  # the same records, now in our pack
            return CompactReport(removed.packs_removed, 1, moved, removed.bytes_reclaimed - copied)
        finally:
            os.close(fd)

    def _move_live(self, pack_id: bytes, fd: int) -> int:
        """Copy the pack's live blobs into our current pack, sync, then repoint each location
        that still names the old copy (compare and set, one txn). Returns blobs moved."""
        with self._env.begin(db=self._held) as txn:  # type: ignore[union-attr]
            cur = txn.cursor()
            held = []
            ok = cur.set_range(pack_id)
            while ok and cur.key()[:8] == pack_id:
                held.append((int.from_bytes(cur.key()[8:], "big"), cur.value()))
                ok = cur.next()
        copies: list[tuple[bytes, Loc, Loc]] = []
        packs: dict[bytes, _Pack] = {}
        try:
            for offset, kb in held:
                old = self._committed_loc(kb)
                if old is None or (old.pack, old.offset) != (pack_id, offset):
                    continue
                data = os.pread(fd, old.length, old.offset)
                pack, (new_offset,) = self._append([(kb, (data,), len(data))])
                packs[pack.id] = pack
                copies.append((kb, old, Loc(pack.id, new_offset, old.length, old.mtime)))
            self._sync_packs(list(packs.values()))
        finally:
            with self._lock:
                for kb, _old, new in copies:
                    self._open[new.pack].writers -= 1
        return self._write(lambda txn: self._repoint(txn, copies))

    def _committed_loc(self, kb: bytes) -> Loc | None:
        if self._env is None:
            return None
        with self._env.begin(db=self._loc) as txn:
            raw = txn.get(kb)
        return Loc.decode(raw) if raw is not None else None

    def _live_count(self, pack_id: bytes) -> tuple[int, int] | None:
        """(blobs, bytes) committed in a pack; None when it never had a location."""
        with self._env.begin(db=self._live) as txn:  # type: ignore[union-attr]
            raw = txn.get(pack_id)
        return LIVE.unpack(raw) if raw is not None else None

    def _repoint(self, txn: lmdb.Transaction, copies: list[tuple[bytes, Loc, Loc]]) -> int:
        moved = 0
        for kb, old, new in copies:
            raw = txn.get(kb, db=self._loc)
            if raw is None or Loc.decode(raw) != old:
                continue  # deleted or moved meanwhile: our copy is dead space
            txn.put(kb, new.encode(), db=self._loc)
            txn.delete(old.held_key, db=self._held)
            txn.put(new.held_key, kb, db=self._held)
            self._count(txn, old.pack, -1, -old.length)
            self._count(txn, new.pack, 1, new.length)
            moved += 1
        return moved

    def _remove_pack(self, pack_id: bytes, path: str, size: int) -> CompactReport:
        """Unlink a pack no location names (we hold its flock), then forget its counters."""
        _unlink_quietly(path)

        def forget(txn: lmdb.Transaction) -> None:
            raw = txn.get(pack_id, db=self._live)
            if raw is not None and LIVE.unpack(raw)[0] == 0:
                txn.delete(pack_id, db=self._live)
        self._write(forget)
        return CompactReport(packs_removed=1, bytes_reclaimed=size)

    def sweep_temp(self, max_age: float = 3600.0) -> int:
        """Remove temp files older than `max_age` (a crash between create and rename)."""
        cutoff, removed = time.time() - max_age, 0
        try:
            for folder in os.listdir(self._packs_dir):
                d = os.path.join(self._packs_dir, folder)
                for entry in os.scandir(d) if os.path.isdir(d) else ():
                    if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                        _unlink_quietly(entry.path)
                        removed += 1
        except OSError as exc:
            raise _map_error(exc, "sweep_temp") from exc
        return removed

    def _write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        env = self._env
        if env is None:
            raise StoreError("store is read-only")
        with env.begin(write=True) as txn:
            return fn(txn)

    def close(self) -> None:
        """Commit what is pending, release every pack, close the index. Safe twice."""
        if self._env is None:
            return
        try:
            with self._flush_lock:
                with self._lock:
                    batch = dict(self._pending)
                if batch:
                    self._commit_pending(batch)
                self._current = None
                self._release_sealed()
        finally:
            with self._lock:
                every, self._reader_fds = self._reader_fds, []
            for fds in every:
                while fds:
                    os.close(fds.popitem()[1])
            self._readers = threading.local()
            _envs.release(self._env)
            self._env = None


class _SharedEnvs:
    """One lmdb.Environment per file per process (LMDB forbids opening one twice in a
    process), shared by every PackStore on that root and closed with the last of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, list] = {}  # type: ignore[type-arg]  # real path -> [env, users]

    def acquire(self, path: str, sync: bool | None) -> lmdb.Environment:
        """The env of `path`; `sync` None opens it read-only (when not already open)."""
        real = os.path.realpath(path)
        with self._lock:
            entry = self._by_path.get(real)
            if entry is None:
                if sync is None:
                    env = lmdb.open(real, subdir=False, readonly=True, lock=False,
                                    map_size=MAP_SIZE, max_dbs=4)
                else:
                    env = lmdb.open(real, subdir=False, map_size=MAP_SIZE, max_dbs=4,
                                    sync=sync, metasync=sync, max_readers=512)
                entry = self._by_path[real] = [env, 0]
            entry[1] += 1
            return entry[0]

    def release(self, env: lmdb.Environment) -> None:
        with self._lock:
            for real, entry in list(self._by_path.items()):
                if entry[0] is env:
                    entry[1] -= 1
                    if entry[1] == 0:
                        del self._by_path[real]
                        env.close()
                    return


_envs = _SharedEnvs()


def _add(a: CompactReport, b: CompactReport) -> CompactReport:
    return CompactReport(a.packs_removed + b.packs_removed, a.packs_rewritten + b.packs_rewritten,
                         a.blobs_moved + b.blobs_moved, a.bytes_reclaimed + b.bytes_reclaimed)


def _pwrite_all(fd: int, parts: list[Buffer], offset: int) -> None:
    """pwritev until every byte is written (it may write less than asked)."""
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.pwritev(fd, views[:IOV_MAX], offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


def _check_read(key: str, loc: Loc, got: int, wanted: int) -> None:
    if got != wanted:
        raise StoreError(f"get {key}: pack {loc.pack.hex()} is truncated")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
