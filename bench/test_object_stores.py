"""PUT/GET throughput of the S3 and Swift stores against the real test Swift, with a yardstick.

Concern: how fast do 64 KiB blobs (the chunker's average) move through S3Store and SwiftStore
with 1 and with 16 threads (the engine's io pool), and how does that compare with the plain
client (boto3 / swiftclient, default settings) moving the same bytes as 1 MiB objects? The
gap says what per-request cost our chunk size pays; the thread scaling says how much of it
concurrency hides.

Run:  .venv/bin/pytest bench/test_object_stores.py --benchmark-enable -s
      (BENCH_MB sets the bytes moved per round: default 16 when benchmarking, 1 otherwise)
Without --benchmark-enable (the project default) every case runs once on 1 MiB: a smoke test.
The server is the session fixture of tests/conftest.py (or CAS_TEST_* external endpoints).
Every case checks the bytes it read back, so a fast wrong answer cannot pass. With a server
this session started, each case also prints the CPU milliseconds per request spent by every
Swift process and by this (client) process: that shows what bounds the rate on loopback.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from tests.conftest import s3_store, swift_server, swift_store  # noqa: F401 - fixtures
from tests.stores.contract import random_key

KiB, MiB = 1 << 10, 1 << 20
# name -> (object size, threads, through our store or the plain client)
CASES = {
    "store-64KiB-1t": (64 * KiB, 1, "store"),
    "store-64KiB-16t": (64 * KiB, 16, "store"),
    "plain-64KiB-1t": (64 * KiB, 1, "plain"),  # separates our overhead from the server's
    "plain-1MiB-1t": (MiB, 1, "plain"),
    "plain-1MiB-16t": (MiB, 16, "plain"),
}


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


def _cpu_seconds(server: Any) -> dict[str, float]:
    """CPU seconds (user+sys) so far of each Swift server process and of this process."""
    used = {"client": sum(os.times()[:2])}
    if server.base is not None:
        tick = os.sysconf("SC_CLK_TCK")
        for pidfile in sorted((server.base / "run").glob("*.pid")):
            try:
                fields = open(f"/proc/{pidfile.read_text().strip()}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[pidfile.stem] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return used


def _run(threads: int, fn: Callable[[int], Any], n: int) -> list[Any]:
    if threads == 1:
        return [fn(i) for i in range(n)]  # a plain loop: no executor overhead in the 1t case
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, range(n)))


def _ops(backend: str, how: str, store: Any, server: Any, names: list[str],
         ) -> tuple[Callable[[int, bytes], None], Callable[[int], bytes]]:
    """put(i, data) and get(i) for object i, through our store or the plain client."""
    if how == "store":
        return (lambda i, d: store.put(names[i], d)), (lambda i: store.get(names[i]))
    if backend == "s3":
        client = server.s3_client()  # boto3 clients are thread-safe

        def put(i: int, d: bytes) -> None:
            client.put_object(Bucket=store.bucket, Key=names[i], Body=d)

        def get(i: int) -> bytes:
            return bytes(client.get_object(Bucket=store.bucket, Key=names[i])["Body"].read())
        return put, get
    local = threading.local()  # a swiftclient.Connection per thread: they are not thread-safe

    def conn() -> Any:
        if not hasattr(local, "conn"):
            local.conn = server.swift_connection()
        return local.conn

    def sput(i: int, d: bytes) -> None:
        conn().put_object(store.container, names[i], d, content_length=len(d))

    def sget(i: int) -> bytes:
        return bytes(conn().get_object(store.container, names[i])[1])
    return sput, sget


@pytest.mark.swift
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("op", ["put", "get"])
@pytest.mark.parametrize("backend", ["s3", "swift"])
def test_object_store_throughput(backend: str, op: str, case: str, request: pytest.FixtureRequest,
                                 swift_server: Any, benchmark: Any) -> None:  # noqa: F811
    size, threads, how = CASES[case]
    store = request.getfixturevalue(f"{backend}_store")
    total = int(os.environ.get("BENCH_MB", 16 if _enabled(request.config) else 1)) * MiB
    payload = os.urandom(total)
    parts = [payload[o:o + size] for o in range(0, total, size)]
    names = [random_key() if how == "store" else f"plain/{i:06d}" for i in range(len(parts))]
    put, get = _ops(backend, how, store, swift_server, names)

    rounds = 3
    cpu0 = _cpu_seconds(swift_server)
    if op == "put":
        result = benchmark.pedantic(_run, args=(threads, lambda i: put(i, parts[i]), len(parts)),
                                    rounds=rounds, warmup_rounds=0)
        cpu1 = _cpu_seconds(swift_server)
        got = _run(threads, get, len(parts))
    else:
        _run(threads, lambda i: put(i, parts[i]), len(parts))
        cpu0 = _cpu_seconds(swift_server)
        got = result = benchmark.pedantic(_run, args=(threads, get, len(parts)),
                                          rounds=rounds, warmup_rounds=0)
        cpu1 = _cpu_seconds(swift_server)
    assert b"".join(got) == payload and len(result) == len(parts)

    if benchmark.stats is not None:
        best = benchmark.stats.stats.min
        benchmark.extra_info["MB_per_s"] = round(total / best / 1e6, 1)
        benchmark.extra_info["requests_per_s"] = round(len(parts) / best, 1)
        requests = rounds * len(parts)
        cpu = {k: (cpu1[k] - cpu0[k]) * 1e3 / requests for k in cpu1 if k in cpu0}
        benchmark.extra_info["cpu_ms_per_request"] = {k: round(v, 2) for k, v in cpu.items()}
        print(f"\n{backend:5} {op:3} {case:16} {total / best / 1e6:7.1f} MB/s "
              f"{len(parts) / best:7.1f} req/s ({len(parts)} x {size // KiB} KiB); CPU ms/req: "
              + " ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
