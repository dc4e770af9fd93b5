"""FilesystemStore: blobs as files under a root directory (the default store).

Layout comes from `stores.layout` only: <root>/chunks/ab/cd/<key>. Invariants:

* A blob file is complete or absent. It is written to a temp file in its target directory
  (".tmp-<key>-<random>", which `layout.key_from_name` never takes for a key), then renamed
  with `os.replace`, so readers and listings never see a partial blob.
* Durability follows the fsync policy. "always": put fsyncs the file, renames, fsyncs the
  directory (and the parents of any fan-out directory it created). "batch": put only writes and
  renames; `flush(keys)` checks the keys are present, then makes them durable with one
  `syncfs(2)` of the filesystem holding chunks/ (a blob found on another device, i.e. a mount
  below chunks/, is fsynced with its directory instead), which the engine calls before the index refers to the
  blobs. syncfs writes back every dirty file *and* commits the metadata (the new files' names
  from the renames, new fan-out directories) and, since Linux 5.8, reports writeback errors;
  one syncfs of a batch costs ~25-35 ms here where per-file fsync costs ~10 ms per file.
  Concurrent flushes share a syncfs that started after they were called (group commit).
  Without syncfs (not Linux), flush fsyncs each file and directory instead.
  "never": no fsync at all (tests, scratch data).
* Deletes are not fsynced: a delete lost in a crash leaves an orphan, which GC sweeps again;
  it can never leave a dangling reference.
* OSError never escapes: ENOSPC/EDQUOT become StorageFull, a missing file BlobNotFound,
  anything else StoreError (always `from exc`).
* A root that cannot be written at start-up gives a read-only store (capabilities say why)
  instead of a crash, so reads of an existing store still work.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from stores import layout
from stores.base import BlobInfo, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "batch", "never")
TEMP_PREFIX = ".tmp-"
_FULL = (errno.ENOSPC, errno.EDQUOT)
_HEX2 = frozenset(f"{i:02x}" for i in range(256))


def map_oserror(exc: OSError, what: str) -> StoreError:
    """The store error for an OSError (the caller raises it `from exc`)."""
    if exc.errno in _FULL:
        return StorageFull(f"{what}: {exc.strerror}")
    return StoreError(f"{what}: {exc}")


def _load_syncfs() -> object | None:
    """libc's syncfs (ctypes releases the GIL around the call), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


_LIBC_SYNCFS = _load_syncfs()


def _syncfs(path: str) -> None:
    """syncfs(2) of the filesystem holding `path`: all its dirty data and metadata, durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _LIBC_SYNCFS(fd) != 0:  # type: ignore[operator]
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def fsync_path(path: str | Path) -> None:
    """fsync a file or a directory by path (directories need O_RDONLY on Linux)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore:
    """BlobStore over a local directory tree; see the module docstring for the invariants."""

    name = "file"

    def __init__(self, root: str | os.PathLike[str], fsync: str = "batch") -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync: must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.root = Path(root)
        self.fsync = fsync
        self._chunks = self.root / layout.PREFIX.rstrip("/")
        self._root_s = os.fspath(self.root)
        # Fan-out directories created but whose entry in the parent is not yet fsynced.
        self._unsynced_dirs: set[Path] = set()
        self._lock = threading.Lock()
        # group commit of syncfs: a flush needs one sync that *started* after it was called
        self._sync_cv = threading.Condition()
        self._sync_started = self._sync_done = 0
        self._syncing = False
        self.capabilities = self._probe()

    def _probe(self) -> Capabilities:
        """Create the root if needed and write+remove a temp file there, or go read-only."""
        probe = self.root / f"{TEMP_PREFIX}probe-{secrets.token_hex(8)}"
        try:
            self._chunks.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, b"probe")
            finally:
                os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = f"cannot write to {self.root}: {exc.strerror or exc}"
            log.warning("filesystem store is read-only: %s", reason)
            return Capabilities(writable=False, reason=reason)
        log.info("filesystem store at %s (fsync=%s)", self.root, self.fsync)
        return Capabilities()

    # -- writes --------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._spath(key)  # plain str + os calls: this is the ingest hot path
        # Keys are digests, so an existing file already holds these bytes: skip the rewrite.
        try:
            os.stat(path)
            return
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise map_oserror(exc, f"stat {key}") from exc
        if not self.capabilities.writable:
            raise StoreError(f"store is read-only: {self.capabilities.reason}")
        try:
            self._write_new(key, path, data)
        except OSError as exc:
            raise map_oserror(exc, f"put {key}") from exc

    def _write_new(self, key: str, path: str, data: bytes) -> None:
        parent = path[: -len(key) - 1]
        tmp = f"{parent}/{TEMP_PREFIX}{key}-{secrets.token_hex(4)}"
        fd = self._create_temp(tmp, parent)
        try:
            try:
                view = memoryview(data)
                while view:  # os.write may write less than asked (signals, huge buffers)
                    view = view[os.write(fd, view):]
                if self.fsync == "always":
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        if self.fsync == "always":
            fsync_path(parent)
            self._sync_new_dirs()

    def _create_temp(self, tmp: str, parent: str) -> int:
        """Open a fresh temp file, creating missing fan-out directories (race-safe)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(tmp, flags, 0o644)
        except FileNotFoundError:
            pass  # first blob under this prefix: make chunks/ab and chunks/ab/cd
        leaf = Path(parent)
        for d in (leaf.parent, leaf):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # another thread or process won the race: same result
            if self.fsync == "always" or (self.fsync == "batch" and _LIBC_SYNCFS is None):
                # (batch with syncfs: the flush's syncfs commits the new entries too)
                with self._lock:
                    self._unsynced_dirs.add(d)
        return os.open(tmp, flags, 0o644)

    def _sync_new_dirs(self) -> None:
        """fsync the parents of newly created fan-out dirs, so their entries survive a crash.

        An entry leaves the set only after its parent was synced, so a concurrent flush
        either syncs it itself or finds it already durable.
        """
        with self._lock:
            pending = set(self._unsynced_dirs)
        if not pending:
            return
        for parent in sorted({d.parent for d in pending}, key=lambda p: -len(p.parts)):
            fsync_path(parent)
        with self._lock:
            self._unsynced_dirs -= pending

    def flush(self, keys: Iterable[str]) -> None:
        paths = [self._spath(k) for k in keys]  # validate every key, whatever the policy
        if self.fsync != "batch" or not paths:
            return
        if _LIBC_SYNCFS is None:
            self._fsync_each(paths)
            return
        chunks = os.fspath(self._chunks)
        elsewhere = []  # blobs on another filesystem than chunks/ (a mount below it): fsync them
        try:
            dev = os.stat(chunks).st_dev
            for path in paths:
                try:
                    if os.stat(path).st_dev != dev:
                        elsewhere.append(path)
                except FileNotFoundError:
                    continue  # deleted since its put: skipped (see BlobStore.flush)
        except OSError as exc:
            raise map_oserror(exc, "flush") from exc
        try:
            self._sync_filesystem(chunks)
        except OSError as exc:
            raise map_oserror(exc, "flush") from exc
        if elsewhere:
            self._fsync_each(elsewhere)
            try:  # and the fan-out dirs' own entries (they may be new)
                for d in {os.path.dirname(os.path.dirname(p)) for p in elsewhere}:
                    fsync_path(d)
            except OSError as exc:
                raise map_oserror(exc, "flush") from exc

    def _sync_filesystem(self, chunks: str) -> None:
        """One syncfs that started after this call, shared with concurrent callers.

        A syncfs already running may have started before our blobs were written, so we wait
        for the next one; whoever finds none running starts it. On failure the caller that
        ran it raises; the others start another one."""
        with self._sync_cv:
            target = self._sync_started + 1
            while self._sync_done < target:
                if self._syncing:
                    self._sync_cv.wait()
                    continue
                self._syncing = True
                self._sync_started += 1
                n = self._sync_started
                ok = False
                self._sync_cv.release()
                try:
                    _syncfs(chunks)
                    ok = True
                finally:
                    self._sync_cv.acquire()
                    self._syncing = False
                    if ok:
                        self._sync_done = n
                    self._sync_cv.notify_all()

    def _fsync_each(self, paths: list[str]) -> None:
        try:
            for path in paths:
                try:
                    fsync_path(path)
                except FileNotFoundError:
                    continue  # deleted since its put: skipped (see BlobStore.flush)
            for d in {os.path.dirname(p) for p in paths}:
                fsync_path(d)
            self._sync_new_dirs()
        except OSError as exc:
            raise map_oserror(exc, "flush") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise map_oserror(exc, f"delete {key}") from exc

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise map_oserror(exc, f"get {key}") from exc

    def stat(self, key: str) -> BlobInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise map_oserror(exc, f"stat {key}") from exc
        return BlobInfo(key, st.st_size, st.st_mtime)

    def exists(self, key: str) -> bool:
        return self._exists(self._path(key))

    def _exists(self, path: Path) -> bool:
        try:
            path.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise map_oserror(exc, f"stat {path.name}") from exc
        return True

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        after = after or ""
        try:
            yield from self._walk(after)
        except OSError as exc:
            raise map_oserror(exc, "list") from exc

    def _walk(self, after: str) -> Iterator[BlobInfo]:
        # A fan-out dir named by prefix p holds only keys starting with p; if p sorts before
        # after[:len(p)] every one of them sorts before `after`, so the dir is never opened.
        for top in self._subdirs(self._chunks, "", after):
            for mid in self._subdirs(self._chunks / top, top, after):
                yield from self._leaf(self._chunks / top / mid, after)

    def _subdirs(self, d: Path, prefix: str, after: str) -> list[str]:
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []  # no blob was ever put under this prefix (or the root is gone)
        cut = after[: len(prefix) + 2]
        return sorted(n for n in names if n in _HEX2 and prefix + n >= cut)

    def _leaf(self, d: Path, after: str) -> Iterator[BlobInfo]:
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        rel = f"{layout.PREFIX}{d.parent.name}/{d.name}/"
        for name in sorted(n for n in names if n > after):
            if layout.key_from_name(rel + name) is None:
                continue  # temp files and strays are not blobs
            try:
                st = os.stat(d / name)
            except FileNotFoundError:
                continue  # deleted between listdir and stat
            yield BlobInfo(name, st.st_size, st.st_mtime)

    # -- maintenance ---------------------------------------------------------------------

    def sweep_temp(self, max_age: float = 3600.0) -> int:
        """Remove temp files older than `max_age` seconds (left by crashed writers).

        Young ones may belong to a put in flight, so they stay. Returns how many were removed.
        """
        cutoff = time.time() - max_age
        try:
            dirs = [self.root] + [self._chunks / t / m for t in self._subdirs(self._chunks, "", "")
                                  for m in self._subdirs(self._chunks / t, t, "")]
            removed = sum(self._sweep_dir(d, cutoff) for d in dirs)
        except OSError as exc:
            raise map_oserror(exc, "sweep_temp") from exc
        if removed:
            log.info("removed %d stale temp file(s) under %s", removed, self.root)
        return removed

    @staticmethod
    def _sweep_dir(d: Path, cutoff: float) -> int:
        removed = 0
        with os.scandir(d) as entries:
            for entry in entries:
                if not entry.name.startswith(TEMP_PREFIX):
                    continue
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # its writer renamed or removed it meanwhile
        return removed

    def close(self) -> None:
        pass  # no handles are held between calls

    def _path(self, key: str) -> Path:
        return self.root / layout.object_name(key)

    def _spath(self, key: str) -> str:
        return f"{self._root_s}/{layout.object_name(key)}"
