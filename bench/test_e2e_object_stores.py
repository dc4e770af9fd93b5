"""Upload and download MB/s through cas-glance over HTTP with the file, S3 and Swift stores,
beside the plain client (boto3 / swiftclient) moving the same bytes as 1 MiB objects.

Concern: what does an image cost end to end on each `default_store`, and what bounds it? A
real `cas-glance serve --config F` (glance-api.conf `[glance_store]` keys; the S3 and Swift
cases use the session's real Swift, tests/conftest.py) gets the same random bytes as a
chunked PUT and serves them back with a GET. Every round uploads different bytes (seeded by
the round, the same for every store), so no round is deduplicated against an earlier one.
The reference is the plain client's loop of 1 MiB objects on one thread (the "what the
server can take" yardstick). Each case prints MB/s, the requests the store saw per second
and the CPU milliseconds per store request spent by the cas-glance server, by each Swift
process and by this (client) process: on loopback that CPU is what bounds the rate.

Run:  .venv/bin/pytest bench/test_e2e_object_stores.py --benchmark-enable -s
      (BENCH_MB: bytes per round, default 32 when benchmarking, 2 otherwise;
       BENCH_IO_THREADS: the engine's io_threads for the extra `-io` cases, default 64)
Without --benchmark-enable (the project default) each case runs once on 2 MiB: a smoke test
that still checks every byte that came back.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bench.test_object_stores import _cpu_seconds
from tests.api.remote import create_image, download, put_chunked, serve, stats
from tests.conftest import s3_store, swift_server, swift_store  # noqa: F401 - fixtures

MiB = 1 << 20
ROUNDS = 3
DEFAULT_IO_THREADS = 16  # cas_glance.config.Config.io_threads
IO_THREADS = int(os.environ.get("BENCH_IO_THREADS", 64))


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


def _size(config: pytest.Config) -> int:
    return int(os.environ.get("BENCH_MB", 32 if _enabled(config) else 2)) * MiB


def payload(round_no: int, size: int) -> bytes:
    """The bytes of round `round_no`: random (no dedup, no compression), the same for every
    store, different for every round."""
    return random.Random(0xCA5 + round_no).randbytes(size)


def _pieces(data: bytes) -> Iterator[bytes]:
    return (data[o:o + MiB] for o in range(0, len(data), MiB))


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(swift: Any, server: Any | None) -> dict[str, float]:
    used = _cpu_seconds(swift) if swift is not None else {"client": sum(os.times()[:2])}
    if server is not None:
        used["cas-glance"] = _proc_cpu(server.proc.pid)
    return used


def _report(benchmark: Any, label: str, size: int, requests: int, rounds: int,
            cpu0: dict[str, float], cpu1: dict[str, float]) -> None:
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, no figures
        return
    best = benchmark.stats.stats.min
    cpu = {k: (cpu1[k] - cpu0[k]) * 1e3 / max(1, rounds * requests) for k in cpu1 if k in cpu0}
    benchmark.extra_info.update(MB_per_s=round(size / best / 1e6, 1),
                                store_requests_per_s=round(requests / best, 1),
                                cpu_ms_per_store_request={k: round(v, 2) for k, v in cpu.items()})
    print(f"\n{label:28} {size / best / 1e6:7.1f} MB/s {requests / best:7.1f} store req/s "
          f"({requests} per round); CPU ms/req: " + " ".join(f"{k} {v:.2f}" for k, v in cpu.items()))


CASES = {  # id -> (default_store, engine io_threads)
    "file": ("file", DEFAULT_IO_THREADS),
    "s3": ("s3", DEFAULT_IO_THREADS),
    "s3-io": ("s3", IO_THREADS),  # more blob requests in flight: does the rate follow?
    "swift": ("swift", DEFAULT_IO_THREADS),  # (side by side: the box's load drifts)
    "swift-io": ("swift", IO_THREADS),
}


@pytest.mark.parametrize("op", ["upload", "download"])
@pytest.mark.parametrize("case", list(CASES))
def test_cas_glance_http_throughput(case: str, op: str, request: pytest.FixtureRequest,
                                    tmp_path: Path, benchmark: Any) -> None:
    backend, io_threads = CASES[case]
    size = _size(request.config)
    swift, name = None, None
    if backend != "file":
        swift = request.getfixturevalue("swift_server")
        store = request.getfixturevalue(f"{backend}_store")
        name = store.bucket if backend == "s3" else store.container
    rounds = ROUNDS if _enabled(request.config) else 1
    done: list[tuple[str, bytes]] = []  # (image id, bytes) per upload round
    with serve(tmp_path, backend, swift, name, io_threads=io_threads) as server:
        if op == "upload":
            def setup() -> tuple[tuple[str, bytes], dict[str, Any]]:
                image_id = create_image(server, f"bench-{len(done)}")
                done.append((image_id, payload(len(done), size)))
                return done[-1], {}

            def upload(image_id: str, data: bytes) -> None:
                status, body = put_chunked(server, image_id, _pieces(data))
                assert status == 204, body[:500]

            cpu0 = _cpu(swift, server)
            benchmark.pedantic(upload, setup=setup, rounds=rounds, warmup_rounds=0)
            cpu1 = _cpu(swift, server)
            image_id, data = done[-1]
        else:
            image_id, data = create_image(server), payload(0, size)
            done.append((image_id, data))
            status, body = put_chunked(server, image_id, _pieces(data))
            assert status == 204, body[:500]
            cpu0 = _cpu(swift, server)
            got = benchmark.pedantic(download, args=(server, image_id), rounds=rounds,
                                     warmup_rounds=0)
            cpu1 = _cpu(swift, server)
            assert got == data
        figures = stats(server)
        assert figures["logical_bytes"] == len(done) * size
        per_round = figures["unique_chunks"] // len(done)  # random bytes: nothing shared
        if op == "upload":
            assert download(server, image_id) == data
        _report(benchmark, f"cas-glance {case} {op} (io {io_threads})", size, per_round,
                rounds, cpu0, cpu1)


def _plain_ops(backend: str, swift: Any, name: str,
               ) -> tuple[Callable[[str, bytes], None], Callable[[str], bytes], Callable[[], None]]:
    """put(name, data), get(name) and close() with the plain client on one thread."""
    if backend == "s3":
        client = swift.s3_client()
        return (lambda key, d: client.put_object(Bucket=name, Key=key, Body=d),
                lambda key: bytes(client.get_object(Bucket=name, Key=key)["Body"].read()),
                client.close)
    conn = swift.swift_connection()
    return (lambda key, d: conn.put_object(name, key, d, content_length=len(d)),
            lambda key: bytes(conn.get_object(name, key)[1]), conn.close)


@pytest.mark.parametrize("op", ["upload", "download"])
@pytest.mark.parametrize("backend", ["s3", "swift"])
def test_plain_client_1mib_objects(backend: str, op: str, request: pytest.FixtureRequest,
                                   benchmark: Any) -> None:
    """The yardstick: the same bytes as a loop of 1 MiB PUTs / GETs with boto3 or swiftclient."""
    swift = request.getfixturevalue("swift_server")
    store = request.getfixturevalue(f"{backend}_store")
    name = store.bucket if backend == "s3" else store.container
    size = _size(request.config)
    rounds = ROUNDS if _enabled(request.config) else 1
    put, get, close = _plain_ops(backend, swift, name)
    written: list[tuple[int, bytes]] = []
    try:
        if op == "upload":
            def setup() -> tuple[tuple[int, bytes], dict[str, Any]]:
                written.append((len(written), payload(len(written), size)))
                return written[-1], {}

            def upload(round_no: int, data: bytes) -> None:
                for i, piece in enumerate(_pieces(data)):
                    put(f"plain/{round_no}/{i:06d}", piece)

            cpu0 = _cpu(swift, None)
            benchmark.pedantic(upload, setup=setup, rounds=rounds, warmup_rounds=0)
            cpu1 = _cpu(swift, None)
            round_no, data = written[-1]
        else:
            round_no, data = 0, payload(0, size)
            for i, piece in enumerate(_pieces(data)):
                put(f"plain/0/{i:06d}", piece)

            cpu0 = _cpu(swift, None)
            got = benchmark.pedantic(lambda: b"".join(get(f"plain/0/{i:06d}")
                                                      for i in range(size // MiB)),
                                     rounds=rounds, warmup_rounds=0)
            cpu1 = _cpu(swift, None)
            assert got == data
        assert b"".join(get(f"plain/{round_no}/{i:06d}") for i in range(size // MiB)) == data
    finally:
        close()
    _report(benchmark, f"plain {backend} 1MiB {op}", size, size // MiB, rounds, cpu0, cpu1)
