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
Written with O_DIRECT (stores/direct.py, where the file system takes it), a pack is padded
with zeros to the next 4 KiB block at each flush and records go on from there.
Location dbs (binary keys; all big-endian, so cursors walk keys in hex order):
  loc   key(32) -> pack id(8) | offset(8) | length(4) | mtime(4)   offset of the blob bytes
  held  pack id(8) | offset(8) -> key(32)                           the blobs a pack holds
  live  pack id(8) -> count(8) | bytes(8)                           per pack, for compaction

Invariants:
* A location is committed only after the bytes it points at are durable: the pack is written
  out and fdatasynced (its directory entry fsynced, once) before the txn that records it.
  `put` makes a blob visible at once through an in-memory pending location (its bytes read
  from the pack's direct-I/O stage while they are only there); `flush` syncs
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
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import lmdb

from stores import direct, layout
from stores.base import BlobInfo, Capabilities
from stores.direct import Buffer
from stores.errors import BlobNotFound, StorageFull, StoreError
from stores.fs import FSYNC_POLICIES, TEMP_PREFIX, fsync_path, map_oserror

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
SPAN_BYTES = 8 << 20  # blob bytes get_many reads per window (a reader's group is 4 MiB)
GAP_BYTES = 256 << 10  # blobs at most this far apart are read with one read (the gap too)
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

    def __init__(self, pack_id: bytes, path: str, fd: int, new_dir: bool, tail: direct.Tail | None) -> None:
        self.id, self.path, self.fd = pack_id, path, fd
        self.tail = tail  # the staged end, when the pack is written with O_DIRECT
        self._end = len(MAGIC)  # how far buffered appends reach
        self.writers = 0  # appends in progress (the fd must stay open)
        self.broken = False  # a direct write failed: no more appends
        self.pending = 0  # locations not yet committed
        self.named_durable = False  # its directory entry survives a crash
        self.new_dir = new_dir  # its fan-out directory was created with it (sync packs/ too)

    @property
    def end(self) -> int:
        """How far appends reach (staged ones included)."""
        return self.tail.end if self.tail is not None else self._end


class PackStore:
    """BlobStore over pack files in a local directory; see the module docstring."""

    name = "file"

    def __init__(self, root: str | os.PathLike[str], fsync: str = "batch",
                 pack_bytes: int = PACK_BYTES, direct_io: bool | None = None) -> None:
        """`direct_io`: write and read packs with O_DIRECT (None: wherever the file system
        takes it; see stores.direct for why)."""
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync: must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.root, self.fsync, self.pack_bytes = Path(root), fsync, pack_bytes
        self._want_direct = direct_io
        self.direct_io = False  # settled by _open_env
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
            self.direct_io = self._want_direct is not False and direct.supported(self._packs_dir)
            if self._want_direct and not self.direct_io:
                raise ValueError(f"{self.root}: the file system does not take O_DIRECT")
        except (OSError, lmdb.Error) as exc:
            reason = f"cannot write to {self.root}: {getattr(exc, 'strerror', None) or exc}"
            log.warning("pack store is read-only: %s", reason)
            self._open_readonly(path)
            return Capabilities(writable=False, reason=reason)
        log.info("pack store at %s (fsync=%s, direct I/O %s)", self.root, self.fsync,
                 "on" if self.direct_io else "off")
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
            pack.writers += 1
            if pack.tail is None:  # reserve the range; the writes may then run in parallel
                start, pack._end = pack._end, pack._end + size
        try:
            if pack.tail is None:
                _pwrite_all(pack.fd, parts, start)
            else:
                start = self._stage(pack, parts)
        except BaseException:
            with self._lock:
                pack.writers -= 1
            raise
        return pack, [start + o for o in offsets]

    def _stage(self, pack: _Pack, parts: list[Buffer]) -> int:
        """Append to a direct-I/O pack (in order, under its tail lock). A failed write leaves
        the stage's end unknown, so the pack takes no more appends."""
        tail = pack.tail
        assert tail is not None
        with tail.lock:
            if pack.broken:
                raise StoreError(f"pack {pack.id.hex()}: an earlier write failed")
            try:
                start = tail.append(parts)
            except BaseException:
                pack.broken = True
                with self._lock:
                    if self._current is pack:
                        self._current = None
                raise
        return start

    def _new_pack(self) -> _Pack:
        """Seal the current pack and start another (called under self._lock)."""
        pack_id = secrets.token_bytes(8)
        hexid = pack_id.hex()
        folder = os.path.join(self._packs_dir, hexid[:2])
        new_dir = not os.path.isdir(folder)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{hexid}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | self._o_direct, 0o644)
        tail = direct.Tail(fd) if self.direct_io else None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if tail is None:
                _pwrite_all(fd, [MAGIC], 0)
            else:
                tail.append([MAGIC])
            path = os.path.join(folder, f"{hexid}.pack")
            os.rename(tmp, path)
        except BaseException:
            if tail is not None:
                tail.close()
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        pack = _Pack(pack_id, path, fd, new_dir, tail)
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
        for pack in packs:
            if pack.tail is not None:  # staged bytes go to disk under every policy
                with pack.tail.lock:
                    pack.tail.write_out()
            if self.fsync == "never":
                continue
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
            if p.tail is not None:
                p.tail.close()
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
            staged = self._staged(loc)
            return staged if staged is not None else bytes(self._read_at(fd, loc, key))
        return self._read(key, read)

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes | memoryview]:
        """The blobs of `keys`, in order (BlobNotFound for a missing one), read a window of
        about SPAN_BYTES at a time: the window's blobs lying close together in a pack are
        read with one read (concurrent store jobs interleave an upload's chunks within a few
        MiB, so a reader's 4 MiB group is one or two reads, not one per chunk). Each blob
        comes as a view into this thread's read buffer: valid until the next is taken."""
        kbs = [bytes.fromhex(layout.validate_key(k)) for k in keys]
        locs = self._locate_many(keys, kbs)
        for lo, hi in _windows(locs):
            blobs = self._read_window(keys, locs, lo, hi)
            for i in range(lo, hi):
                blob = blobs.get(i)
                yield blob if blob is not None else self.get(keys[i])  # pending, missing, moved

    def _read_window(self, keys: Sequence[str], locs: list[Loc | None], lo: int,
                     hi: int) -> dict[int, memoryview]:
        """Read the committed blobs of locs[lo:hi], a cluster of close ones at a time, into
        this thread's "window" buffer; a cluster whose pack compaction removed is left out."""
        clusters = _clusters(locs, lo, hi)
        spans = [_span(locs, c) for c in clusters]
        buf = direct.thread_buffer("window", sum(direct.span_size(*span) for span in spans))
        pos, blobs = 0, {}
        for cluster, (start, length) in zip(clusters, spans):
            first = locs[cluster[0]]
            assert first is not None
            room = direct.span_size(start, length)
            try:
                view = direct.read_into(self._read_fd(first.pack), start, length, buf[pos:pos + room])
            except FileNotFoundError:
                continue  # compaction moved them meanwhile: looked up again one by one
            except EOFError as exc:
                raise _truncated(keys[cluster[0]], first.pack) from exc
            except OSError as exc:
                raise _map_error(exc, f"get {keys[cluster[0]]}") from exc
            pos += room
            for i in cluster:
                loc = locs[i]
                assert loc is not None
                blobs[i] = view[loc.offset - start:loc.offset - start + loc.length]
        return blobs

    def _locate_many(self, keys: Sequence[str], kbs: list[bytes]) -> list[Loc | None]:
        """Each key's committed location (None when pending or missing), in one read txn."""
        if self._env is None:
            return [None] * len(keys)
        try:
            with self._env.begin(db=self._loc) as txn:
                return [None if k in self._pending else _decode_loc(txn.get(kb))
                        for k, kb in zip(keys, kbs)]
        except lmdb.Error as exc:
            raise _map_error(exc, "lookup") from exc

    def _read_at(self, fd: int, loc: Loc, key: str) -> memoryview:
        """The blob's bytes as a view into this thread's span buffer (aligned reads serve
        direct and buffered fds alike)."""
        try:
            return direct.read_span(fd, loc.offset, loc.length)
        except EOFError as exc:
            raise _truncated(key, loc.pack) from exc

    def _staged(self, loc: Loc) -> bytes | None:
        """A pending blob's bytes while some are only in its pack's stage (direct I/O)."""
        pack = self._open.get(loc.pack)
        tail = pack.tail if pack is not None else None
        if tail is None:
            return None
        with tail.lock:
            return tail.read(loc.offset, loc.length)

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
        fd = self._open_for_read(self._pack_path(pack_id))
        fds[pack_id] = fd
        if len(fds) > READ_FDS:
            os.close(fds.popitem(last=False)[1])
        return fd

    def _open_for_read(self, path: str) -> int:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | self._o_direct)

    @property
    def _o_direct(self) -> int:
        return os.O_DIRECT if self.direct_io else 0

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
            fd = self._open_for_read(path)
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
                data = bytes(self._read_at(fd, old, kb.hex()))
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
            return _decode_loc(txn.get(kb))

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


def _windows(locs: list[Loc | None]) -> Iterator[tuple[int, int]]:
    """Consecutive index ranges whose blobs add up to at most SPAN_BYTES (at least one)."""
    lo, size = 0, 0
    for i, loc in enumerate(locs):
        n = loc.length if loc is not None else 0
        if i > lo and size + n > SPAN_BYTES:
            yield lo, i
            lo, size = i, 0
        size += n
    if lo < len(locs):
        yield lo, len(locs)


def _span(locs: list[Loc | None], cluster: list[int]) -> tuple[int, int]:
    """(offset, length) of the pack bytes a cluster's blobs lie in."""
    start = min(locs[i].offset for i in cluster)  # type: ignore[union-attr]
    end = max(locs[i].offset + locs[i].length for i in cluster)  # type: ignore[union-attr]
    return start, end - start


def _clusters(locs: list[Loc | None], lo: int, hi: int) -> list[list[int]]:
    """The indices of the committed locs[lo:hi] in runs that one read each covers: sorted by
    place, a run going on across gaps of at most GAP_BYTES while the window's gaps add up
    to at most SPAN_BYTES / 4 (so a read never wastes much of the disk's time)."""
    order = sorted((i for i in range(lo, hi) if locs[i] is not None),
                   key=lambda i: (locs[i].pack, locs[i].offset))  # type: ignore[union-attr]
    clusters: list[list[int]] = []
    waste = 0
    for i in order:
        loc = locs[i]
        assert loc is not None
        if clusters:
            last = locs[clusters[-1][-1]]
            assert last is not None
            gap = max(loc.offset - (last.offset + last.length), 0)  # < 0: the same blob again
            if loc.pack == last.pack and gap <= GAP_BYTES and waste + gap <= SPAN_BYTES // 4:
                clusters[-1].append(i)
                waste += gap
                continue
        clusters.append([i])
    return clusters


def _truncated(key: str, pack_id: bytes) -> StoreError:
    return StoreError(f"get {key}: pack {pack_id.hex()} is truncated")


def _decode_loc(raw: bytes | None) -> Loc | None:
    return None if raw is None else Loc.decode(raw)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
