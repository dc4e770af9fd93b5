"""Where a blob's bytes live on disk, for tests that damage or age them behind the store's
back, whichever file layout the store uses (one file per blob, or pack files)."""
from __future__ import annotations

import os
from pathlib import Path

from stores import layout
from stores.fs import FilesystemStore
from stores.pack import PackStore


def region(store: object, key: str) -> tuple[Path, int, int]:
    """(file, offset, length) of the stored blob `key`."""
    if isinstance(store, PackStore):
        loc = store._locate(key, bytes.fromhex(key))
        assert loc is not None, f"{key} is not in the store"
        return Path(store._pack_path(loc.pack)), loc.offset, loc.length
    assert isinstance(store, FilesystemStore), type(store)
    path = store.root / layout.object_name(key)
    return path, 0, path.stat().st_size


def corrupt(store: object, key: str) -> None:
    """Flip the bits of the blob's last byte (its payload: the BLAKE3 check must catch it)."""
    path, offset, length = region(store, key)
    with open(path, "r+b") as f:
        f.seek(offset + length - 1)
        last = f.read(1)[0]
        f.seek(offset + length - 1)
        f.write(bytes([last ^ 0xFF]))


def backdate(store: object, key: str, when: float) -> None:
    """Make the blob look last written at `when` (a listing reports it as its mtime)."""
    if isinstance(store, PackStore):
        kb = bytes.fromhex(key)
        loc = store._locate(key, kb)
        assert loc is not None
        store._write(lambda txn: txn.put(kb, type(loc)(loc.pack, loc.offset, loc.length, int(when)).encode(),
                                         db=store._loc))
        return
    os.utime(region(store, key)[0], (when, when))
