"""Encodings of the index: LMDB key/value layouts, the pin entry type, and the resize gate.

No transaction is opened here (that is index.py's alone); these are the pure pieces it uses:
  manifest key    id ‖ 0x00 ‖ u64be offset   (the NUL keeps "ab" from prefixing "abc")
  manifest value  32 raw digest bytes ‖ u32be length; all-zero digest = zero chunk
  chunk value     msgpack [refcount, stored size, codec, state, zero_since, raw length]
"""
from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import msgpack

FORMAT_VERSION = 1
ZERO_DIGEST = bytes(32)  # manifest marker for an all-zero chunk (never stored)
LIVE, DYING = 0, 1
HIDDEN = ("deleted", "pending_delete")  # statuses list_images/get_image do not show
MVAL = struct.Struct(">32sI")
Record = dict[str, Any]  # an image record: opaque below `id` and `status`


class ChunkRef(NamedTuple):
    """One manifest entry to pin. digest None = zero chunk. `put`: the caller put+flushed the
    blob in this stretch (so an absent entry may be created); `stored`/`codec` describe it."""

    offset: int
    digest: str | None
    length: int
    stored: int = 0
    codec: int = 0
    put: bool = False


class NeedPut(Exception):
    """Internal: abort a pin txn; these digests must be (re-)put first."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__(digests)
        self.digests = digests


class Gate:
    """Shared/exclusive gate: every txn is `shared`; a map resize is exclusive (LMDB's
    set_mapsize requires no active transaction in this process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._resizing = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    def exclusive(self, fn: Callable[[], None]) -> None:
        with self._cond:
            self._resizing = True
            try:
                while self._active:
                    self._cond.wait()
                fn()
            finally:
                self._resizing = False
                self._cond.notify_all()


def pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False)


def mprefix(image_id: str) -> bytes:
    return image_id.encode() + b"\x00"


def mkey(prefix: bytes, offset: int) -> bytes:
    return prefix + offset.to_bytes(8, "big")


def mentry(key: bytes, val: bytes) -> tuple[int, str | None, int]:
    raw, length = MVAL.unpack(val)
    return int.from_bytes(key[-8:], "big"), (None if raw == ZERO_DIGEST else raw.hex()), length


def when(value: Any) -> float:
    """A record's deleted_at as epoch seconds (ISO string or number; missing = 0)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value).timestamp()
    return 0.0
