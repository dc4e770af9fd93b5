"""Transfer phases: single-stream upload (Content-Length and chunked), download (each
uploaded image read once, then once more: the first read may come from the disk, the second
from whatever the server or its page cache kept), and N concurrent uploads.

Every upload sends fresh random data (a new :class:`RandomSource` nonce), so no upload dedups
against another. Timing covers only the HTTP transfer; verification runs off the clock: the
server's checksum of each verified image must equal the MD5 of the data we generated, and
one download is hashed (in a worker thread) and compared with both and with Content-MD5.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.e2e.data import RandomSource
from bench.e2e.figures import GIB, MIB, median, mib_s, percentile
from bench.e2e.glance import GlanceClient, GlanceError
from bench.e2e.monitor import Monitor
from bench.e2e.progress import Progress
from bench.e2e.server import Target
from bench.e2e.settings import Settings

_nonces = itertools.count(1)
_HASH_BATCH = 8 * MIB


class ThreadedMD5:
    """MD5 of a byte stream, hashed on one worker thread while the next batch arrives."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="md5")
        self._pending: asyncio.Future[None] | None = None
        self._buf: list[bytes] = []
        self._filled = 0

    def feed(self, piece: bytes) -> Awaitable[None] | None:
        self._buf.append(piece)
        self._filled += len(piece)
        return self._flush() if self._filled >= _HASH_BATCH else None

    async def _flush(self) -> None:
        data = b"".join(self._buf)
        self._buf, self._filled = [], 0
        if self._pending is not None:
            await self._pending
        self._pending = asyncio.wrap_future(self._pool.submit(self._md5.update, data))

    async def hexdigest(self) -> str:
        await self._flush()
        if self._pending is not None:
            await self._pending
        self._pool.shutdown()
        return self._md5.hexdigest()


async def _counted(body: AsyncIterator[bytearray], progress: Progress) -> AsyncIterator[bytearray]:
    async for block in body:
        yield block
        progress.advance(len(block) / MIB)


def _usage_fields(monitor: Monitor, nbytes: int) -> dict[str, float | None]:
    usage = monitor.usage
    per_gib = None if usage.cpu_s is None else usage.cpu_s / (nbytes / GIB)
    client = None if usage.client_cpu_s is None else usage.client_cpu_s / (nbytes / GIB)
    return {"server_cpu_s": usage.cpu_s, "server_cpu_s_per_gib": per_gib,
            "server_peak_rss_mib": usage.peak_rss_mib, "client_cpu_s_per_gib": client}


async def upload_one(target: Target, src: RandomSource, size: int, chunked: bool,
                     label: str) -> dict[str, Any]:
    """Create an image and upload ``size`` fresh random bytes once, measured."""
    client = target.client
    nonce = next(_nonces)
    record = await client.create(f"bench-{label}-{nonce}")
    with Progress(label, size / MIB, " MiB") as progress, Monitor(target.pid) as monitor:
        body = _counted(src.stream(nonce, size), progress)
        seconds = await client.upload(record["id"], body, None if chunked else size)
    return {"image_id": record["id"], "nonce": nonce, "bytes": size, "seconds": seconds,
            "mib_s": mib_s(size, seconds), **_usage_fields(monitor, size)}


async def download_one(target: Target, image_id: str, size: int, label: str) -> dict[str, Any]:
    """Download an image once, measured; the bytes are only counted."""
    with Progress(label, 1, " image") as progress, Monitor(target.pid) as monitor:
        got = await target.client.download(image_id)
        progress.advance()
    if got.size != size:
        raise GlanceError(f"download of {image_id}: {got.size} bytes, expected {size}")
    return {"image_id": image_id, "bytes": size, "seconds": got.seconds,
            "mib_s": mib_s(size, got.seconds), **_usage_fields(monitor, size)}


async def verify(client: GlanceClient, src: RandomSource, sample: dict[str, Any],
                 download: bool) -> dict[str, Any]:
    """Check the server's size/checksum against our data; optionally a hashed download."""
    loop = asyncio.get_running_loop()
    expected = await loop.run_in_executor(None, src.md5, sample["nonce"], sample["bytes"])
    record = await client.get(sample["image_id"])
    if record.get("status") != "active" or record.get("size") != sample["bytes"]:
        raise GlanceError(f"image {sample['image_id']}: status {record.get('status')}, "
                          f"size {record.get('size')}, expected active, {sample['bytes']}")
    if record.get("checksum") != expected:
        raise GlanceError(f"image {sample['image_id']}: checksum {record.get('checksum')} != {expected}")
    result: dict[str, Any] = {"image_id": sample["image_id"], "md5": expected, "checksum_ok": True}
    if download:
        hasher = ThreadedMD5()
        got = await client.download(sample["image_id"], sink=hasher.feed)
        actual = await hasher.hexdigest()
        if actual != expected or got.size != sample["bytes"] or got.content_md5 not in (None, expected):
            raise GlanceError(f"download of {sample['image_id']} differs: md5 {actual}, "
                              f"Content-MD5 {got.content_md5}, {got.size} bytes; expected {expected}")
        result.update(download_md5_ok=True, verified_download_mib_s=mib_s(got.size, got.seconds))
    return result


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median throughput and CPU over repeats; the largest peak RSS (a peak is a maximum)."""
    cpu = [s["server_cpu_s"] for s in samples if s["server_cpu_s"] is not None]
    per_gib = [s["server_cpu_s_per_gib"] for s in samples if s["server_cpu_s_per_gib"] is not None]
    rss = [s["server_peak_rss_mib"] for s in samples if s["server_peak_rss_mib"] is not None]
    client = [s["client_cpu_s_per_gib"] for s in samples if s["client_cpu_s_per_gib"] is not None]
    return {"mib_s": median([s["mib_s"] for s in samples]),
            "seconds": median([s["seconds"] for s in samples]),
            "bytes": samples[0]["bytes"], "repeats": len(samples),
            "server_cpu_s": median(cpu) if cpu else None,
            "server_cpu_s_per_gib": median(per_gib) if per_gib else None,
            "server_peak_rss_mib": max(rss) if rss else None,
            "client_cpu_s_per_gib": median(client) if client else None,
            "samples": samples}


async def throughput(target: Target, settings: Settings, src: RandomSource) -> dict[str, Any]:
    """Upload (Content-Length, chunked) and download of ``settings.size``, each repeated."""
    size, n = settings.size, settings.repeat
    uploads: dict[str, list[dict[str, Any]]] = {"content_length": [], "chunked": []}
    downloads: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []  # the same image once more: what a second host reads
    for r in range(n):
        for mode in list(uploads):
            label = f"upload {mode.replace('_', '-')} {r + 1}/{n}"
            uploads[mode].append(await upload_one(target, src, size, mode == "chunked", label))
    for r, sample in enumerate(uploads["content_length"]):
        downloads.append(await download_one(target, sample["image_id"], size, f"download {r + 1}/{n}"))
        again.append(await download_one(target, sample["image_id"], size, f"download again {r + 1}/{n}"))
    checks = [await verify(target.client, src, uploads["content_length"][0], download=True),
              await verify(target.client, src, uploads["chunked"][0], download=False)]
    if not target.local:
        await delete_all(target.client, [s["image_id"] for m in uploads.values() for s in m])
    return {"upload_content_length": summarize(uploads["content_length"]),
            "upload_chunked": summarize(uploads["chunked"]),
            "download": summarize(downloads), "download_again": summarize(again),
            "verification": checks}


async def _concurrent_round(target: Target, settings: Settings, src: RandomSource,
                            label: str) -> dict[str, Any]:
    client, n, size = target.client, settings.concurrency, settings.concurrent_size
    records = await asyncio.gather(*(client.create(f"bench-conc-{i}") for i in range(n)))
    nonces = [next(_nonces) for _ in records]
    loop = asyncio.get_running_loop()
    with Progress(label, n * size / MIB, " MiB") as progress, Monitor(target.pid) as monitor:
        start = loop.time()
        times = await asyncio.gather(*(
            client.upload(rec["id"], _counted(src.stream(nonce, size), progress), size)
            for rec, nonce in zip(records, nonces)))
        wall = loop.time() - start
    sample = {"uploads": n, "bytes_each": size, "wall_s": wall, "upload_s": list(times),
              "aggregate_mib_s": mib_s(n * size, wall), **_usage_fields(monitor, n * size),
              "image_ids": [rec["id"] for rec in records], "nonces": nonces}
    return sample


async def concurrent(target: Target, settings: Settings, src: RandomSource) -> dict[str, Any]:
    """``settings.concurrency`` simultaneous uploads, repeated; aggregate and per-upload time."""
    rounds = [await _concurrent_round(target, settings, src, f"{settings.concurrency} concurrent "
                                      f"uploads {r + 1}/{settings.repeat}")
              for r in range(settings.repeat)]
    first = rounds[0]
    await verify(target.client, src, {"image_id": first["image_ids"][0], "nonce": first["nonces"][0],
                                      "bytes": settings.concurrent_size}, download=False)
    times = [t for rnd in rounds for t in rnd["upload_s"]]
    rss = [r["server_peak_rss_mib"] for r in rounds if r["server_peak_rss_mib"] is not None]
    cpu = [r["server_cpu_s_per_gib"] for r in rounds if r["server_cpu_s_per_gib"] is not None]
    if not target.local:
        await delete_all(target.client, [i for rnd in rounds for i in rnd["image_ids"]])
    return {"concurrent": {
        "uploads": settings.concurrency, "bytes_each": settings.concurrent_size,
        "repeats": len(rounds), "aggregate_mib_s": median([r["aggregate_mib_s"] for r in rounds]),
        "p50_s": percentile(times, 50), "p99_s": percentile(times, 99),
        "server_cpu_s_per_gib": median(cpu) if cpu else None,
        "server_peak_rss_mib": max(rss) if rss else None, "samples": rounds}}


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], parallel: int,
                  progress: Progress | None = None) -> list[Any]:
    """Run ``jobs`` with at most ``parallel`` in flight; results in job order."""
    results: list[Any] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in queue:
            results[index] = await job()
            if progress is not None:
                progress.advance()

    await asyncio.gather(*(worker() for _ in range(min(parallel, len(jobs)) or 1)))
    return results


async def delete_all(client: GlanceClient, image_ids: list[str], parallel: int = 16) -> None:
    """Delete the images a phase created on a server we do not own."""
    await bounded([functools.partial(client.delete, i) for i in image_ids], parallel)
