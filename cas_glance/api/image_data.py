"""Image data: upload (`PUT /v2/images/{id}/file`) and download (`GET .../file`).

Invariants:
* uploads stream: `request.content.iter_chunked` feeds `engine.upload`; the body is never
  read whole, so `client_max_size` does not apply and memory does not grow with image size;
* the status moves queued -> saving -> active through domain mutates the engine applies in
  one transaction each; any failure, disconnect or cancellation reverts the image to
  `queued` (the engine runs `revert` and releases its pins), so the upload can be retried;
* once a byte of the body was consumed, a store failure is a 500, not a 503
  (`BODY_READ`, see api/errors.py);
* downloads stream `engine.read` through a `web.StreamResponse` with Content-Length and a hex
  `Content-MD5` of the whole image (also on 206). Ranges follow glance-v2-api.md 2.7.
"""
from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.context import request_context
from cas_glance.api.keys import BODY_READ
from cas_glance.domain import image as domain_image
from cas_glance.errors import (
    BadRequest,
    CasGlanceError,
    PayloadTooLarge,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20  # bytes handed to the engine per step of the request stream
_RANGE = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")  # one byte-range-spec: a-b, a-, -n


def _expected_size(request: web.Request) -> int | None:
    raw = request.headers.get("x-openstack-image-size")
    if raw is None or raw == "":
        return None
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest(f"x-openstack-image-size is not an integer: {raw!r}") from None
    if size < 0:
        raise BadRequest("x-openstack-image-size must not be negative")
    return size


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for piece in request.content.iter_chunked(READ_SIZE):
        request[BODY_READ] = True
        yield piece


async def upload(request: web.Request) -> web.Response:
    media_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(
            f"Content-Type must be application/octet-stream, not {media_type or '(none)'!r}")
    record = common.visible_image(request)
    domain_image.ensure_can_modify(record, request_context(request))
    cfg = common.config(request)
    expected = _expected_size(request)
    declared = request.content_length
    for size in (expected, declared):
        if size is not None and size > cfg.image_size_cap:
            # refused before a byte is read: the image never left `queued`
            raise PayloadTooLarge(f"Image size {size} exceeds the cap of {cfg.image_size_cap} bytes")
    await common.engine(request).upload(
        record["id"],
        _body(request),
        begin=domain_image.begin_upload,
        finish=lambda r, res: domain_image.finish_upload(
            r, size=res.size, checksum=res.checksum, os_hash_algo=res.os_hash_algo,
            os_hash_value=res.os_hash_value, now=common.now()),
        revert=lambda r: domain_image.revert_upload(r, common.now()),
        size_cap=cfg.image_size_cap,
        expected_size=expected,
    )
    return web.Response(status=204)


def parse_range(header: str, size: int) -> tuple[int, int]:
    """`Range` header -> (start, end exclusive). Multiple ranges: 400; malformed or a start at
    or past the end: 416; an end past the size is clamped; `-n` is the last n bytes."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() == "bytes" and "," in spec:
        raise BadRequest("Multiple byte ranges are not supported")
    match = _RANGE.fullmatch(spec) if unit.strip().lower() == "bytes" else None
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(f"Malformed Range header: {header!r}", size)
    first, last = match.groups()
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range {header!r} is not satisfiable", size)
        return max(0, size - n), size
    start = int(first)
    end = size if not last else int(last) + 1
    if start >= size or end <= start:
        raise RangeNotSatisfiable(f"Range {header!r} is not satisfiable for {size} bytes", size)
    return start, min(end, size)


async def download(request: web.Request) -> web.StreamResponse:
    record = common.visible_image(request)
    ctx = request_context(request)
    domain_image.can_download(record, ctx)  # 403: deactivated, non-admin
    size = record.get("size")
    if record.get("status") not in ("active", "deactivated") or size is None:
        return web.Response(status=204)  # no data (yet): glanceclient reports "has no data"
    start, end, status = 0, size, 200
    if "Range" in request.headers:
        start, end = parse_range(request.headers["Range"], size)
        status = 206
    reader = common.engine(request).read(record["id"], start, end)
    resp = web.StreamResponse(status=status)
    resp.content_type = "application/octet-stream"
    resp.content_length = end - start
    if record.get("checksum"):
        resp.headers["Content-MD5"] = record["checksum"]  # hex, as Glance sends it
    if status == 206:
        resp.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    try:
        # The first piece is fetched before the headers go out, so a missing or corrupt first
        # chunk still gets a proper error status instead of a truncated 200.
        # (Handed over in a list that _stream empties: a reference kept here would pin the
        # reader's first group buffer for the whole response.)
        first = [await anext(aiter(reader), b"")] if end > start else []
        await resp.prepare(request)
        await _stream(request, resp, reader, first)
    finally:
        aclose = getattr(reader, "aclose", None)
        if aclose is not None:
            await aclose()  # releases whatever the reader holds (prefetches, read leases)
    return resp


async def _stream(request: web.Request, resp: web.StreamResponse,
                  reader: AsyncIterator[bytes | memoryview], first: list[bytes | memoryview]) -> None:
    try:
        if first and first[0]:
            await resp.write(first.pop())
        first.clear()
        async for piece in reader:
            await resp.write(piece)
        await resp.write_eof()
    except ConnectionError as exc:
        log.info("download %s aborted by the client: %s", request.path, exc)
    except Exception as exc:
        # Headers are gone: the only honest signal left is a short body. Close the connection
        # so the client sees fewer bytes than Content-Length and its hash check fails loudly.
        # Expected kinds (image deleted meanwhile, store down) need no traceback.
        if isinstance(exc, CasGlanceError):
            log.warning("download %s failed mid-stream: %r", request.path, exc)
        else:
            log.exception("download %s failed mid-stream", request.path)
        if request.transport is not None:
            request.transport.close()


def setup(app: web.Application) -> None:
    app.router.add_route("PUT", "/v2/images/{image_id}/file", upload)
    app.router.add_route("GET", "/v2/images/{image_id}/file", download)
