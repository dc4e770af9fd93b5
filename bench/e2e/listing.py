"""Listing phase: ``GET /v2/images`` latency with many images present.

Creates ``list_images`` queued images with concurrent POSTs (``create_parallel`` in flight),
then times first-page requests one at a time (latency, not throughput) at limit=20 and
limit=1000, each round repeated; per round p50/p99 (nearest rank), the median of rounds is
reported. A request's time ends when its whole body has been read; parsing is off the clock.
The first page of each limit is checked to hold the expected number of images.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from bench.e2e.figures import median, percentile
from bench.e2e.glance import GlanceClient, GlanceError
from bench.e2e.progress import Progress
from bench.e2e.server import Target
from bench.e2e.settings import Settings
from bench.e2e.transfer import bounded, delete_all

_WARMUP = 5
LIMITS = (20, 1000)


async def create_images(client: GlanceClient, count: int, parallel: int) -> list[str]:
    """``count`` queued images, ``parallel`` POSTs in flight; their ids."""
    with Progress(f"create {count} images", count, " images") as progress:
        jobs = [functools.partial(client.create, f"bench-list-{i:06d}") for i in range(count)]
        records = await bounded(jobs, parallel, progress)
    return [r["id"] for r in records]


async def _check_page(client: GlanceClient, limit: int, present: int, exact: bool) -> None:
    _, body = await client.list_page(limit)
    images = json.loads(body).get("images")
    if not isinstance(images, list):
        raise GlanceError(f"GET /v2/images?limit={limit}: no 'images' list")
    want = min(limit, present)
    wrong = len(images) != want if exact else len(images) < want
    if wrong:
        raise GlanceError(f"GET /v2/images?limit={limit}: {len(images)} images, expected {want}")


async def _round(client: GlanceClient, limit: int, requests: int, progress: Progress) -> dict[str, float]:
    times = []
    for _ in range(requests):
        seconds, _body = await client.list_page(limit)
        times.append(seconds * 1000.0)
        progress.advance()
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
            "max_ms": max(times), "requests": len(times)}


async def _measure(client: GlanceClient, limit: int, requests: int, repeat: int) -> dict[str, Any]:
    for _ in range(_WARMUP):
        await client.list_page(limit)
    with Progress(f"list limit={limit}", requests * repeat, " req") as progress:
        rounds = [await _round(client, limit, requests, progress) for _ in range(repeat)]
    return {"limit": limit, "p50_ms": median([r["p50_ms"] for r in rounds]),
            "p99_ms": median([r["p99_ms"] for r in rounds]), "requests_per_round": requests,
            "repeats": repeat, "rounds": rounds}


async def listing(target: Target, settings: Settings) -> dict[str, Any]:
    """Create the images, then measure both limits."""
    client = target.client
    ids = await create_images(client, settings.list_images, settings.create_parallel)
    out: dict[str, Any] = {}
    for limit in LIMITS:
        requests = settings.list_requests_small if limit <= 100 else settings.list_requests_large
        await _check_page(client, limit, len(ids), exact=target.local)
        out[f"list_limit{limit}"] = {"images_present": len(ids) if target.local else None,
                                     "images_created": len(ids),
                                     **await _measure(client, limit, requests, settings.repeat)}
    if not target.local:
        with Progress(f"delete {len(ids)} images", 1, "") as progress:
            await delete_all(client, ids, settings.create_parallel)
            progress.advance()
    return out
