"""MemoryStore: a dict-backed BlobStore for tests and benchmarks.

Same contract as every other backend (it runs the conformance suite), nothing is durable.
Invariants: one lock guards the dict, so every method is atomic with respect to the others;
`list` works on a sorted snapshot taken under the lock, so a listing never sees a torn state
and writers are never blocked by a slow consumer.
"""
from __future__ import annotations

import threading
import time
from typing import Iterable, Iterator

from stores.base import BlobInfo, Capabilities
from stores.errors import BlobNotFound
from stores.layout import validate_key


class MemoryStore:
    """Blobs in a dict: key -> (bytes, mtime)."""

    name = "memory"

    def __init__(self) -> None:
        self.capabilities = Capabilities()
        self._blobs: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        blob = bytes(data)  # own a copy: callers may reuse a bytearray or memoryview
        with self._lock:
            self._blobs.setdefault(key, (blob, time.time()))

    def flush(self, keys: Iterable[str]) -> None:
        for key in keys:
            validate_key(key)

    def get(self, key: str) -> bytes:
        return self._entry(key)[0]

    def stat(self, key: str) -> BlobInfo:
        data, mtime = self._entry(key)
        return BlobInfo(key, len(data), mtime)

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._blobs

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        with self._lock:
            snapshot = sorted((k, len(d), m) for k, (d, m) in self._blobs.items()
                              if after is None or k > after)
        return (BlobInfo(k, size, mtime) for k, size, mtime in snapshot)

    def close(self) -> None:
        pass

    def _entry(self, key: str) -> tuple[bytes, float]:
        validate_key(key)
        with self._lock:
            entry = self._blobs.get(key)
        if entry is None:
            raise BlobNotFound(key)
        return entry
