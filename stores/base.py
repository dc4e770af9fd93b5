"""The BlobStore protocol: the whole contract between the engine and a storage backend.

Keys are lower-case hex BLAKE3 digests (64 characters); values are opaque encoded blobs (the
engine's blob format, see cas_glance.blobfmt). Stores never hash or inspect values: integrity
is checked once, above them. Every method may be called concurrently from many threads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol, runtime_checkable


@dataclass(frozen=True)
class BlobInfo:
    """What a listing or stat knows about one blob."""

    key: str
    size: int
    mtime: float  # seconds since the epoch, as the backend reports the last write


@dataclass(frozen=True)
class Capabilities:
    """What a store can do right now (plain data, not bit masks)."""

    writable: bool = True
    reason: str = ""  # why it is not writable, for the log
    remote: bool = False  # every call is a network round trip: keep many small calls in flight


@runtime_checkable
class BlobStore(Protocol):
    """Contract every backend honours (tests/stores/contract.py checks each point)."""

    name: str
    capabilities: Capabilities

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`. Putting an existing key again is harmless (the value is
        the same by construction: keys are digests). Once put returns, `get` sees the blob;
        durability may wait for `flush`. Raises StorageFull, StoreUnavailable, StoreError."""

    def flush(self, keys: Iterable[str]) -> None:
        """Make the given, already put keys durable (fsync for the filesystem store; a no-op
        where put is already durable). Called before the index is told the blobs exist.
        A key deleted since its put (a collection ran in between) is skipped, not an error:
        the upload's pin finds its entry dying or gone and puts it again."""

    def get(self, key: str) -> bytes:
        """Return the blob. Raises BlobNotFound when the key is absent."""

    def stat(self, key: str) -> BlobInfo:
        """Return size and mtime of the blob. Raises BlobNotFound when the key is absent."""

    def exists(self, key: str) -> bool:
        """True when the key is present."""

    def delete(self, key: str) -> None:
        """Remove the blob. Deleting a missing key succeeds (idempotent)."""

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        """Every blob whose key sorts strictly after `after` (all when None), in ascending key
        order, so an interrupted listing resumes from the last key seen."""

    def close(self) -> None:
        """Release connections and file handles. Safe to call twice."""
