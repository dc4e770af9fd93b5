"""A minimal Glance v2 HTTP client for the benchmark: one aiohttp session, loud failures.

Works against any Glance v2 endpoint (sections 2.1, 2.2, 2.6 and 2.7 of the API): create
with ``POST /v2/images``, upload with ``PUT /v2/images/{id}/file`` (Content-Length or
chunked transfer encoding, ``Content-Type: application/octet-stream``), download with
``GET /v2/images/{id}/file``, list with ``GET /v2/images``. Every response status is
checked; anything unexpected raises :class:`GlanceError` with the start of the body.

Invariants: upload bodies are streamed from async iterators (bounded memory); download
bytes are handed to an optional sink and otherwise only counted.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

OCTET = "application/octet-stream"
_READ_BUFSIZE = 1 << 18


class GlanceError(RuntimeError):
    """The server answered with a status the benchmark did not expect."""


@dataclass(frozen=True)
class Download:
    """One finished download: bytes received, wall seconds, and the Content-MD5 header."""

    size: int
    seconds: float
    content_md5: str | None


def new_session(connections: int = 128, keepalive: bool = True) -> aiohttp.ClientSession:
    """The run's single session: a large connection pool, no timeouts on big transfers.

    ``keepalive=False`` opens a connection per request, for servers (uWSGI's HTTP modes)
    that drop idle keep-alive connections under the client.
    """
    connector = aiohttp.TCPConnector(limit=connections, force_close=not keepalive)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, read_bufsize=_READ_BUFSIZE, auto_decompress=False
    )


class GlanceClient:
    """Glance v2 calls used by the benchmark, bound to one endpoint and token."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: str, token: str | None):
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.endpoint = self.endpoint.removesuffix("/v2")
        self._headers = {"X-Auth-Token": token} if token else {}

    def _url(self, path: str) -> str:
        return f"{self.endpoint}{path}"

    async def _check(self, resp: aiohttp.ClientResponse, expected: tuple[int, ...], what: str) -> None:
        if resp.status not in expected:
            body = (await resp.read())[:500].decode("utf-8", "replace")
            raise GlanceError(f"{what}: HTTP {resp.status} (expected {expected}): {body}")

    async def versions(self) -> Any:
        """``GET /versions`` (no auth needed); used to wait for readiness."""
        async with self.session.get(self._url("/versions"), headers=self._headers) as resp:
            await self._check(resp, (200, 300), "GET /versions")
            return await resp.json(content_type=None)

    async def wait_ready(self, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True) -> None:
        """Poll ``/versions`` until it answers; ``alive`` lets a dead server fail fast."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.versions()
                return
            except (aiohttp.ClientError, OSError):
                if time.monotonic() > deadline or not alive():
                    raise
            await asyncio.sleep(0.1)

    async def create(self, name: str, **extra: str) -> dict[str, Any]:
        """``POST /v2/images`` of a raw/bare image; returns the record (status queued)."""
        body = {"name": name, "disk_format": "raw", "container_format": "bare", **extra}
        async with self.session.post(self._url("/v2/images"), json=body, headers=self._headers) as resp:
            await self._check(resp, (201,), "POST /v2/images")
            record: dict[str, Any] = await resp.json(content_type=None)
        if record.get("status") != "queued":
            raise GlanceError(f"created image {record.get('id')} is {record.get('status')}, not queued")
        return record

    async def get(self, image_id: str) -> dict[str, Any]:
        """``GET /v2/images/{id}``."""
        async with self.session.get(self._url(f"/v2/images/{image_id}"), headers=self._headers) as resp:
            await self._check(resp, (200,), f"GET image {image_id}")
            record: dict[str, Any] = await resp.json(content_type=None)
            return record

    async def upload(self, image_id: str, body: AsyncIterator[bytes | bytearray],
                     size: int | None) -> float:
        """``PUT .../file``; with ``size`` sends Content-Length, else chunked. Returns seconds."""
        headers = {**self._headers, "Content-Type": OCTET}
        if size is not None:
            headers["Content-Length"] = str(size)
        start = time.perf_counter()
        url = self._url(f"/v2/images/{image_id}/file")
        async with self.session.put(url, data=body, headers=headers) as resp:
            await self._check(resp, (204,), f"PUT image {image_id} file")
            await resp.read()
        return time.perf_counter() - start

    async def download(self, image_id: str, sink: Callable[[bytes], Any] | None = None) -> Download:
        """``GET .../file``; each received piece goes to ``sink`` (awaited if it returns one)."""
        start = time.perf_counter()
        size = 0
        url = self._url(f"/v2/images/{image_id}/file")
        async with self.session.get(url, headers=self._headers) as resp:
            await self._check(resp, (200,), f"GET image {image_id} file")
            async for piece in resp.content.iter_any():
                size += len(piece)
                if sink is not None:
                    pending = sink(piece)
                    if pending is not None:
                        await pending
            md5 = resp.headers.get("Content-MD5")
        return Download(size=size, seconds=time.perf_counter() - start, content_md5=md5)

    async def list_page(self, limit: int) -> tuple[float, bytes]:
        """``GET /v2/images?limit=N``: seconds until the whole body is read, and the body."""
        start = time.perf_counter()
        url = self._url("/v2/images")
        async with self.session.get(url, params={"limit": str(limit)}, headers=self._headers) as resp:
            await self._check(resp, (200,), "GET /v2/images")
            body = await resp.read()
        return time.perf_counter() - start, body

    async def delete(self, image_id: str) -> None:
        """``DELETE /v2/images/{id}``."""
        async with self.session.delete(self._url(f"/v2/images/{image_id}"), headers=self._headers) as resp:
            await self._check(resp, (204,), f"DELETE image {image_id}")
