"""Child process for the peak-RSS tests: ingest a generated stream, print what it measured.

usage: rss_child.py SIZE_MIB fs|null DATA_DIR   -> one JSON line on stdout
Peak RSS is VmHWM from /proc/self/status: ru_maxrss would do on a fresh process, but Linux
carries ru_maxrss over execve, so a child forked from a big pytest process would report its
parent's size (we saw 416 MiB "before" the ingest started). Both are printed.
The stream repeats one random 1 MiB block with a counter stamped every 16 KiB, so every chunk
is new (nothing dedups) while generation costs one 1 MiB copy per block.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cas_glance.config import Config
from cas_glance.engine import Engine
from stores.fs import FilesystemStore
from stores.memory import MemoryStore


class DiscardStore(MemoryStore):
    """Accepts every put and keeps nothing (measures the engine, not the store)."""

    def put(self, key: str, data: bytes) -> None:
        pass


async def generate(mib: int) -> AsyncIterator[bytes]:
    base = bytearray(os.urandom(1 << 20))
    for i in range(mib):
        for at in range(0, 1 << 20, 16 << 10):
            struct.pack_into(">QQ", base, at, i, at)
        yield bytes(base)


def vm_hwm_kib() -> int:
    """Peak resident set of this process image (kB), reset by execve unlike ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main(mib: int, kind: str, data_dir: Path) -> dict:
    cfg = Config().replace(data_dir=data_dir, fsync="never")
    store = FilesystemStore(data_dir / "blobs", "never") if kind == "fs" else DiscardStore()
    eng = Engine.open(cfg, store)
    eng.index.create_image({"id": "big", "status": "queued"})
    rss_before = vm_hwm_kib()
    t = time.perf_counter()
    rec = await eng.upload("big", generate(mib), begin=lambda r: dict(r, status="saving"),
                           finish=lambda r, res: dict(r, status="active", size=res.size),
                           revert=lambda r: dict(r, status="queued"), size_cap=1 << 50,
                           expected_size=None)
    seconds = time.perf_counter() - t
    eng.close()
    return {"size": rec["size"], "seconds": seconds, "mb_s": rec["size"] / seconds / 1e6,
            "maxrss_kib_before": rss_before,
            "maxrss_kib": vm_hwm_kib(),
            "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))))
