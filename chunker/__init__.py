"""Content-defined chunking for cas-glance: FastCDC (2020) over a native kernel.

Concern: split image bytes into chunks whose boundaries depend on content, so
that equal regions of different images yield equal chunks.  The cut rule is
specified in ``chunker.reference``; ``chunker._fastcdc`` (C, GIL released
while scanning) implements it fast.

Invariants:

* ``Chunker.chunk_lengths(buf)`` sums to ``len(buf)``; every chunk but the
  last has at least ``min_size`` bytes; none has more than ``max_size``.
* A ``StreamChunker`` cuts exactly where ``chunk_lengths`` cuts on the
  concatenation of everything fed, whatever the feed sizes: it only makes
  a cut when it has ``max_size`` bytes from the chunk start on (a cut never
  looks further ahead than that), and cuts the rest on ``finish()``.  Its buffer is
  allocated once, 4 * ``max_size`` (at most 2 * ``max_size`` + 4 MiB),
  whatever the feed sizes.
* ``Chunker.params()`` identifies the cut rule.  It is recorded in the index:
  any change that can move a cut must change it, since moved cuts silently
  end deduplication against everything already stored.
"""

from __future__ import annotations

import hashlib
import operator

from . import _fastcdc
from .reference import masks

__all__ = ["Chunker", "StreamChunker", "ALGORITHM", "MIN_SIZE_LIMIT", "MAX_SIZE_LIMIT"]

#: Name of the cut rule (FastCDC 2020, normalization level 2, top-bit masks,
#: cut after the matching byte, see chunker.reference).  Bump it if the rule
#: changes.
ALGORITHM = "fastcdc-2020"

#: Below this, chunk metadata would outweigh the data it describes.
MIN_SIZE_LIMIT = 64
#: A chunk is held in memory whole (and compressed whole); keep it bounded.
MAX_SIZE_LIMIT = 64 * 1024 * 1024


def _gear_id() -> str:
    # Hash the table the kernel actually uses, not a Python copy of it.
    raw = b"".join(v.to_bytes(8, "little") for v in _fastcdc.gear_table())
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


_GEAR_ID = _gear_id()


def _check_size(name: str, value: object) -> int:
    # operator.index accepts int-likes (e.g. numpy integers), not floats.
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {type(value).__name__}") from None
    if not MIN_SIZE_LIMIT <= value <= MAX_SIZE_LIMIT:
        raise ValueError(
            f"{name}={value} out of range [{MIN_SIZE_LIMIT}, {MAX_SIZE_LIMIT}]")
    return value


class Chunker:
    """FastCDC parameters plus the two ways to cut: whole buffer or stream.

    Immutable in use and safe to share between threads.
    """

    __slots__ = ("min_size", "avg_size", "max_size", "_mask_s", "_mask_l")

    def __init__(self, min_size: int = 16384, avg_size: int = 65536,
                 max_size: int = 262144) -> None:
        min_size = _check_size("min_size", min_size)
        avg_size = _check_size("avg_size", avg_size)
        max_size = _check_size("max_size", max_size)
        if avg_size & (avg_size - 1):
            # The masks have log2(avg_size) +/- 2 bits.
            raise ValueError(f"avg_size={avg_size} must be a power of two")
        if min_size > avg_size:
            raise ValueError(f"min_size={min_size} must not exceed avg_size={avg_size}")
        if avg_size > max_size:
            raise ValueError(f"max_size={max_size} must not be below avg_size={avg_size}")
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self._mask_s, self._mask_l = masks(avg_size)

    def __repr__(self) -> str:
        return (f"Chunker(min_size={self.min_size}, avg_size={self.avg_size}, "
                f"max_size={self.max_size})")

    def params(self) -> dict:
        """What decides the cuts; stored with the index to detect changes."""
        return {
            "algorithm": ALGORITHM,
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
            "gear": _GEAR_ID,
        }

    def _cut(self, buf, final: bool) -> list[int]:
        return _fastcdc.cut(buf, self.min_size, self.avg_size, self.max_size,
                            self._mask_s, self._mask_l, final)

    def chunk_lengths(self, buf) -> list[int]:
        """Chunk lengths of the whole bytes-like ``buf`` (sum == len(buf))."""
        return self._cut(buf, True)

    def stream(self) -> StreamChunker:
        """A fresh incremental chunker with these parameters."""
        return StreamChunker(self)


class StreamChunker:
    """Incremental chunking of data arriving in blocks of any size.

    Pending bytes (fewer than ``max_size`` between calls) live in one
    bytearray allocated once per stream and never resized: bytes are copied
    in, scanned in place, and copied out once into each chunk.  A fed block
    of ``max_size`` bytes or more is mostly cut where it lies, without
    copying it into the buffer first (and, for a ``bytes`` block, without
    copying those chunks out either: they are views into the block).

    Not thread-safe itself (one stream per upload), but the scan releases
    the GIL, so streams in different threads cut in parallel.
    """

    __slots__ = ("_chunker", "_buf", "_start", "_end", "_finished")

    def __init__(self, chunker: Chunker) -> None:
        self._chunker = chunker
        self._buf = bytearray()  # allocated by the first feed
        self._start = 0  # pending bytes are _buf[_start:_end]
        self._end = 0
        self._finished = False

    def feed(self, data) -> list[bytes | memoryview]:
        """Add ``data``; return the chunks that are now settled (maybe none).

        Chunks that lie whole inside a ``bytes`` block are read-only memoryviews into
        it (no copy; they keep the block alive); every other chunk is a bytes copy."""
        if self._finished:
            raise ValueError("feed() after finish()")
        max_size = self._chunker.max_size
        with memoryview(data) as raw, raw.cast("B") as view:
            # Pending + at most max_size new bytes settle every chunk that
            # starts among the pending bytes.
            head = min(len(view), max_size)
            self._append(view[:head])
            chunks = self._cut_pending(final=False)
            if head == len(view):
                return chunks
            # The rest of the pending bytes are the end of the head, so the
            # next chunk starts at view[start]: cut the block where it lies
            # and keep only its unsettled tail (< max_size bytes).
            start = head - (self._end - self._start)
            self._start = self._end = 0
            rest = view[start:]
            # chunks of an immutable block can be views into it: no copy
            more, used = _slice(rest, self._chunker._cut(rest, False), share=isinstance(data, bytes))
            self._append(rest[used:])
            return chunks + more

    def finish(self) -> list[bytes | memoryview]:
        """Cut and return everything still held; the stream is then closed."""
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        chunks = self._cut_pending(final=True)
        self._buf = bytearray()
        return chunks

    def _append(self, src: memoryview) -> None:
        """Copy src after the pending bytes, compacting or allocating first."""
        n = len(src)
        buf = self._buf
        if self._end + n > len(buf):
            if not buf:
                # Pending (< max_size) plus one head (<= max_size) always
                # fits in 2 * max_size; the slack makes compaction rare.
                max_size = self._chunker.max_size
                self._buf = buf = bytearray(2 * max_size + min(2 * max_size, 4 << 20))
            pending = self._end - self._start
            # Move the pending bytes to the front.  Via a bytes copy: the
            # regions may overlap and slice assignment does not promise
            # memmove semantics.
            with memoryview(buf) as v:
                buf[:pending] = bytes(v[self._start:self._end])
            self._start, self._end = 0, pending
        buf[self._end:self._end + n] = src
        self._end += n

    def _cut_pending(self, final: bool) -> list[bytes | memoryview]:
        with memoryview(self._buf) as v, v[self._start:self._end] as pending:
            chunks, used = _slice(pending, self._chunker._cut(pending, final), share=False)
        self._start += used
        if self._start == self._end:
            self._start = self._end = 0
        return chunks


def _slice(view: memoryview, lengths: list[int], share: bool) -> tuple[list[bytes | memoryview], int]:
    """Consecutive chunks of the given lengths out of view, and their total length.
    With ``share`` (view is of an immutable bytes object) the chunks are read-only
    views into it, which keep it alive; otherwise bytes() makes the one copy that turns
    each chunk into an object the caller owns (the pending buffer is reused)."""
    chunks: list[bytes | memoryview] = []
    pos = 0
    for length in lengths:
        part = view[pos:pos + length]
        chunks.append(part.toreadonly() if share else bytes(part))
        pos += length
    return chunks, pos
