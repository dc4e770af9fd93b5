"""Engine throughput: ingest (unique / duplicate / compressible data) and read, in MB/s.

Run:  .venv/bin/pytest bench/test_engine.py --benchmark-enable -s
With benchmarks disabled (the normal suite) each runs once over a small input, as a smoke test.
Ingest uses a store that discards blobs, so the figures are the engine's, not a disk's; the
`nohash` variant turns the md5/os_hash lanes into no-ops to show what the hashes cost.
The 4 GiB peak-RSS run (tests/engine/rss_child.py) only runs with --benchmark-enable.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cas_glance.ingest as ingest_mod
from cas_glance.config import Config
from cas_glance.engine import Engine
from stores.memory import MemoryStore
from tests.engine.engine_helpers import random_bytes, read_all, text_like, upload

ROOT = Path(__file__).resolve().parents[1]
_ids = itertools.count()


class DiscardStore(MemoryStore):
    def put(self, key: str, data: bytes) -> None:
        pass


def enabled(request: pytest.FixtureRequest) -> bool:
    # the project's addopts say --benchmark-disable; --benchmark-enable on the command line wins
    opt = request.config.getoption
    return bool(opt("benchmark_enable", False)) or not opt("benchmark_disable", True)


@pytest.fixture
def size(request: pytest.FixtureRequest) -> int:
    return (256 << 20) if enabled(request) else (8 << 20)


def report(benchmark: Any, nbytes: int, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.mean:
        mb_s = nbytes / stats.stats.mean / 1e6
        benchmark.extra_info["MB/s"] = round(mb_s, 1)
        print(f"\n{label}: {mb_s:.0f} MB/s (mean of {stats.stats.rounds} rounds, {nbytes >> 20} MiB)")


def fresh_engine(tmp: Path) -> Engine:
    d = tmp / f"e{next(_ids)}"
    return Engine.open(Config().replace(data_dir=d, fsync="never"), DiscardStore())


def ingest_once(engine: Engine, data: bytes) -> None:
    rec = asyncio.run(upload(engine, f"i{next(_ids)}", data))
    assert rec["size"] == len(data)


@pytest.mark.parametrize("kind", ["unique-random", "compressible", "unique-random-nohash"])
def test_ingest_new_data(benchmark: Any, tmp_path: Path, size: int, kind: str,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = text_like(size, 1) if kind == "compressible" else random_bytes(size, 2)
    if kind.endswith("nohash"):
        async def feed(self: Any, block: bytes) -> None:
            return None
        monkeypatch.setattr(ingest_mod._HashLane, "feed", feed)  # (the cut is a lane too)
    engines: list[Engine] = []

    def setup() -> tuple[tuple[Engine, bytes], dict]:
        engines.append(fresh_engine(tmp_path))  # new index each round: every chunk is new
        return (engines[-1], data), {}
    benchmark.pedantic(ingest_once, setup=setup, rounds=3 if size > 8 << 20 else 1)
    for e in engines:
        e.close()
    report(benchmark, size, f"ingest {kind}")


def test_ingest_duplicate_data(benchmark: Any, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, 3)
    engine = fresh_engine(tmp_path)
    ingest_once(engine, data)  # every later round finds every chunk known
    benchmark.pedantic(ingest_once, args=(engine, data), rounds=3 if size > 8 << 20 else 1)
    engine.close()
    report(benchmark, size, "ingest duplicate")


@pytest.fixture
def stored_image(tmp_path: Path, size: int) -> Iterator[tuple[Engine, int]]:
    engine = Engine.open(Config().replace(data_dir=tmp_path / "r", fsync="never"), MemoryStore())
    data = random_bytes(size // 2, 4) + text_like(size // 2, 5)
    asyncio.run(upload(engine, "r", data))
    assert asyncio.run(read_all(engine, "r")) == data  # checked once, outside the timing
    yield engine, len(data)
    engine.close()


def test_read(benchmark: Any, stored_image: tuple[Engine, int]) -> None:
    engine, n = stored_image

    async def stream() -> int:
        # pieces are dropped as they come, as a response writer does; keeping 256 MiB alive
        # would measure this VM's page-fault cost instead of the reader
        return sum([len(piece) async for piece in engine.read("r")])

    def read() -> None:
        assert asyncio.run(stream()) == n
    benchmark.pedantic(read, rounds=3 if n > 8 << 20 else 1)
    report(benchmark, n, "read (half random, half text, verified)")


def test_ingest_4gib_peak_rss(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if not enabled(request):
        pytest.skip("4 GiB run only with --benchmark-enable (tests/engine runs 512 MiB)")
    out = subprocess.run([sys.executable, str(ROOT / "tests/engine/rss_child.py"), "4096", "null",
                          str(tmp_path)], capture_output=True, text=True, timeout=1800, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n4 GiB ingest: {got}")
    assert got["maxrss_kib"] < 250 * 1024
