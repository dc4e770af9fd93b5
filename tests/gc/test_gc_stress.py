"""The ordering rule under load: uploads of heavily overlapping content, deletes and
collections with grace 0 — in this process and in a separate `gc` process on the same data
directory — all at once, for a fixed number of rounds. Afterwards every surviving image
downloads byte-exact, fsck is clean, and one more collection leaves exactly the chunks of the
surviving images in the store.

High overlap on purpose: every upload is one of a few variants of one base image, so pins of
a chunk race its collection (an image holding it is deleted, the collector marks it dying)
over and over.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cas_glance import fsck
from tests.gc.lab import Lab, variant

ROOT = Path(__file__).resolve().parents[2]
UPLOADERS = 4
ROUNDS = int(os.environ.get("CAS_GC_STRESS_ROUNDS", "80"))  # uploads per uploader

_COLLECTOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cas_glance import gc
    from cas_glance.index import Index
    from stores.fs import FilesystemStore
    data, stop = Path(sys.argv[1]), Path(sys.argv[2])
    index = Index(data / "index", chunker_params=None, sync=False)
    store = FilesystemStore(data / "blobs", "never")
    runs = 0
    while not stop.exists():
        gc.collect(index, store, grace=0, sweep=False, lock_path=data / gc.LOCK_NAME, wait=True)
        runs += 1
        time.sleep(0.005)
    print(runs)
""")


class Stress:
    def __init__(self, lab: Lab, base: bytes, seed: int) -> None:
        self.lab, self.rnd = lab, random.Random(seed)
        self.pool = [base] + [variant(base, s, edits=2) for s in range(1, 3)]
        self.live: dict[str, bytes] = {}
        self.deletes = 0

    async def uploader(self, n: int) -> None:
        for _ in range(n):
            data = self.rnd.choice(self.pool)
            iid = await self.lab.upload(data)
            self.live[iid] = data
            if len(self.live) > 1 and self.rnd.random() < 0.7:
                victim = self.rnd.choice(sorted(self.live))
                del self.live[victim]
                await self.lab.engine.offload.io(self.lab.delete, victim)
                self.deletes += 1


def _collect_in_thread(lab: Lab, stop: threading.Event, runs: list[int]) -> None:
    while not stop.is_set():
        lab.collect(grace=0, sweep=False, wait=True)
        runs.append(1)


@pytest.mark.slow
async def test_uploads_deletes_and_collections_at_once_lose_nothing(
        lab: Lab, base_data: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cas_glance.ingest")
    stress = Stress(lab, base_data * 8, seed=11)
    stop_file, stop = tmp_path / "stop", threading.Event()
    proc = subprocess.Popen([sys.executable, "-c", _COLLECTOR, str(lab.engine.cfg.data_dir), str(stop_file)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    runs: list[int] = []
    thread = threading.Thread(target=_collect_in_thread, args=(lab, stop, runs))
    thread.start()
    t0 = time.monotonic()
    try:
        await asyncio.gather(*(stress.uploader(ROUNDS) for _ in range(UPLOADERS)))
    finally:
        stop.set()
        stop_file.touch()
        thread.join()
        out, _ = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    refused = sum("at pin" in r.getMessage() for r in caplog.records)
    print(f"stress: {UPLOADERS * ROUNDS} uploads, {stress.deletes} deletes, {len(runs)} in-process "
          f"and {out.strip()} out-of-process collections, {refused} pins refused, in {elapsed:.1f}s")
    assert len(runs) > 10 and int(out) > 10
    for iid, data in stress.live.items():
        assert await lab.download(iid) == data, iid
    lab.collect(grace=0)
    result = fsck.check(lab.index, lab.store, verify_blobs=True)
    assert result.clean, result.problems
    needed = {d for iid in stress.live for _o, d, _n in lab.index.manifest(iid) if d is not None}
    assert {i.key for i in lab.store.list()} == needed
    assert set(lab.chunks()) == needed
