"""Series phases: ingest a sequence of related images and follow logical vs stored bytes.

Two sources: the seeded synthetic snapshot series (:func:`bench.e2e.data.snapshot_series`)
and ``--series DIR`` (real disk images, name order). After each image the server's stored
bytes are read (``Target.store_stats``); figures are relative to the reading taken before
the first image, so whatever the server held before does not count. The space ratio is
logical / stored, i.e. dedup × compression (the engine's own split is kept in ``raw``).
"""
from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from bench.e2e.data import SeriesSpec, directory_series, file_stream, memory_stream, snapshot_series
from bench.e2e.figures import MIB, median, mib_s
from bench.e2e.glance import GlanceError
from bench.e2e.progress import Progress
from bench.e2e.server import StoreStats, Target
from bench.e2e.settings import Settings
from bench.e2e.transfer import delete_all

Item = tuple[str, int, Callable[[], AsyncIterator[bytes]]]


def _stored_delta(now: StoreStats | None, before: StoreStats | None) -> int | None:
    if now is None:
        return None
    return now.stored_bytes - (before.stored_bytes if before else 0)


async def _ingest(target: Target, name: str, size: int,
                  body: Callable[[], AsyncIterator[bytes]]) -> tuple[str, float]:
    record = await target.client.create(f"bench-series-{name}")
    seconds = await target.client.upload(record["id"], body(), size)
    got = await target.client.get(record["id"])
    if got.get("status") != "active" or got.get("size") != size:
        raise GlanceError(f"series image {name}: status {got.get('status')}, size {got.get('size')}")
    return record["id"], seconds


async def ingest_series(target: Target, items: Iterable[Item], count: int, total: int,
                        label: str) -> dict[str, Any]:
    """Upload each item (Content-Length), reading stored bytes after each one."""
    before = target.store_stats()
    images: list[dict[str, Any]] = []
    ids: list[str] = []
    logical = 0
    stats: StoreStats | None = None
    with Progress(label, total / MIB, " MiB") as progress:
        for name, size, body in items:
            image_id, seconds = await _ingest(target, name, size, body)
            ids.append(image_id)
            logical += size
            stats = target.store_stats()
            stored = _stored_delta(stats, before)
            images.append({"name": name, "bytes": size, "seconds": seconds,
                           "mib_s": mib_s(size, seconds), "logical_bytes": logical,
                           "stored_bytes": stored,
                           "ratio": logical / stored if stored else None})
            progress.advance(size / MIB)
    if len(images) != count:
        raise RuntimeError(f"{label}: ingested {len(images)} images, expected {count}")
    if not target.local:
        await delete_all(target.client, ids)
    return _summary(images, stats)


def _summary(images: list[dict[str, Any]], stats: StoreStats | None) -> dict[str, Any]:
    last = images[-1]
    seconds = sum(i["seconds"] for i in images)
    raw = stats.raw if stats and stats.raw else {}
    return {"images": len(images), "logical_bytes": last["logical_bytes"],
            "dedup_ratio": raw.get("dedup_ratio"), "compression_ratio": raw.get("compression_ratio"),
            "stored_bytes": last["stored_bytes"], "ratio": last["ratio"],
            "stored_source": stats.source if stats else "unknown",
            "engine_stats": stats.raw if stats else None,
            "median_mib_s": median([i["mib_s"] for i in images]),
            "overall_mib_s": mib_s(last["logical_bytes"], seconds),
            "per_image": images}


def _memory_items(spec: SeriesSpec) -> Iterable[Item]:
    for name, content in snapshot_series(spec):
        yield name, len(content), functools.partial(memory_stream, content)


async def synthetic_series(target: Target, settings: Settings) -> dict[str, Any]:
    """The seeded snapshot series: a base image then ``snapshots`` edited copies."""
    spec = SeriesSpec(seed=settings.seed, base_size=settings.series_base,
                      snapshots=settings.snapshots, change=settings.change)
    count = spec.snapshots + 1
    approx_total = spec.base_size * count
    result = await ingest_series(target, _memory_items(spec), count, approx_total,
                                 f"snapshot series ({count} images)")
    result["spec"] = {"seed": spec.seed, "base_bytes": spec.base_size, "snapshots": spec.snapshots,
                      "change": spec.change, "zero": spec.zero, "text": spec.text}
    return {"series": result}


async def directory_ingest(target: Target, directory: Path) -> dict[str, Any]:
    """``--series DIR``: every file of DIR in name order."""
    files = directory_series(directory)
    items: list[Item] = [(p.name, p.stat().st_size, functools.partial(file_stream, p)) for p in files]
    total = sum(size for _, size, _ in items)
    result = await ingest_series(target, items, len(items), total, f"directory series ({len(items)} files)")
    result["directory"] = str(directory)
    return {"dir_series": result}
