"""Small helpers every resource module shares: JSON bodies, image lookup, the clock.

Invariants:
* an image that is missing, deleted, pending_delete, not a UUID, or invisible to the caller is
  a 404, never a 403 (Glance never reveals that an invisible image exists);
* record reads come from the index's in-process cache (dict lookups, fine on the loop); every
  write goes through `write_image`, i.e. one index transaction on the io pool, with the domain
  mutate (and the visibility re-check) evaluated inside that transaction.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cas_glance.api.context import request_context
from cas_glance.api.keys import CONFIG, ENGINE
from cas_glance.config import Config
from cas_glance.domain import image as domain_image
from cas_glance.domain.context import RequestContext
from cas_glance.domain.types import Record
from cas_glance.engine import Engine
from cas_glance.errors import BadRequest, NotFound

_GONE_STATUSES = ("deleted", "pending_delete")

__all__ = ["Record"]  # re-exported: handlers annotate records with common.Record


def now() -> str:
    """The domain's timestamp format (Glance's `YYYY-MM-DDTHH:MM:SSZ`)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def config(request: web.Request) -> Config:
    return request.app[CONFIG]


def image_id(request: web.Request) -> str:
    """The `{image_id}` path segment, 404 unless it is a UUID (the sdk probes names)."""
    raw = request.match_info["image_id"]
    try:
        uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No image found with ID {raw}") from None
    return raw


def check_visible(record: Record | None, ctx: RequestContext, image_id: str) -> Record:
    """Return `record` if the caller may see it, else raise 404."""
    if (record is None or record.get("status") in _GONE_STATUSES
            or not domain_image.is_visible(record, ctx)):
        raise NotFound(f"No image found with ID {image_id}")
    return record


def visible_image(request: web.Request) -> Record:
    """The addressed image as the caller may see it (404 otherwise)."""
    iid = image_id(request)
    return check_visible(engine(request).index.get_image(iid), request_context(request), iid)


async def write_image(request: web.Request, mutate: Callable[[Record], Record]) -> Record:
    """Apply `mutate` to the addressed image in one index transaction (off the loop).

    Visibility is re-checked inside the transaction, so an image deleted or hidden between our
    read and the write is a 404, not a write to a vanished record."""
    iid = image_id(request)
    ctx = request_context(request)
    eng = engine(request)

    def guarded(record: Record) -> Record:
        return mutate(check_visible(record, ctx, iid))

    result: Record = await eng.offload.io(eng.index.update_image, iid, guarded)
    return result


async def json_body(request: web.Request) -> Any:
    """The request body parsed as JSON (400 when absent or malformed)."""
    if not request.can_read_body:
        raise BadRequest("Body expected in request.")
    raw = await request.read()  # small metadata documents; capped by client_max_size (413)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda o: json.dumps(o, separators=(", ", ": ")))
