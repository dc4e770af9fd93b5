"""The aiohttp application factory: `create_app(cfg, engine=None) -> web.Application`.

Concern: wiring only. Typed keys live in api/keys.py; handlers live in api/<resource>.py.
Invariants:
* the Engine is opened in `cleanup_ctx` (closed only if opening succeeded) unless the caller
  passes one in, in which case the caller owns it and closes it;
* every response, errors and streamed downloads included, carries
  `x-openstack-request-id` (set in `on_response_prepare`, which runs for StreamResponses too);
* middleware order, outermost first: request id -> version negotiation -> errors -> body guard
  -> auth context. Nothing in a middleware reads the request body (it can be read only once).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from cas_glance import gc
from cas_glance.api import (
    actions,
    image_data,
    images,
    info,
    members,
    schemas,
    tags,
    versions,
)
from cas_glance.api.context import context_from_headers
from cas_glance.api.errors import Handler, error_middleware
from cas_glance.api.keys import CONFIG, CONTEXT, ENGINE, REQUEST_ID
from cas_glance.config import Config
from cas_glance.engine import Engine
from cas_glance.errors import BadRequest

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 64  # Glance refuses longer incoming ids
REQUEST_ID_HEADER = "x-openstack-request-id"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Adopt a caller's request id (glanceclient re-sends it while paging) or mint one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request[REQUEST_ID] = incoming if 0 < len(incoming) <= MAX_REQUEST_ID else f"req-{uuid.uuid4()}"
    return await handler(request)


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID) or f"req-{uuid.uuid4()}"
    response.headers[REQUEST_ID_HEADER] = rid


@web.middleware
async def body_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reject an over-long request id, and a body on GET/HEAD/DELETE (Glance answers 400)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if len(incoming) > MAX_REQUEST_ID:
        raise BadRequest(f"x-openstack-request-id is longer than {MAX_REQUEST_ID} characters")
    if request.method in ("GET", "HEAD", "DELETE"):
        # glanceclient sends Content-Type on every request; only an actual body counts.
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if (request.content_length or 0) > 0 or chunked:
            raise BadRequest(f"A {request.method} request must not have a body")
    return await handler(request)


@web.middleware
async def auth_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CONTEXT] = context_from_headers(request.headers)
    return await handler(request)


def setup_routes(app: web.Application) -> None:
    versions.setup(app)
    schemas.setup(app)
    images.setup(app)
    image_data.setup(app)
    tags.setup(app)
    actions.setup(app)
    members.setup(app)
    info.setup(app)


async def _recover(engine: Engine) -> None:
    """Start-up recovery: images a crash left `saving` go back to `queued` (their pins are
    released); runs before the first request, so no upload of ours can be in flight."""
    result = await engine.offload.io(gc.recover_saving, engine)
    log.info("start-up recovery done: %s", result)


def _engine_ctx(cfg: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        engine = Engine.open(cfg)
        app[ENGINE] = engine
        try:
            await _recover(engine)
            yield
        finally:
            engine.close()

    return engine_ctx


def create_app(cfg: Config, engine: Engine | None = None) -> web.Application:
    """The Glance v2 app. With `engine` given the caller owns it (tests inject one over a
    faulty store); otherwise the app opens and closes its own."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            versions.version_negotiation,
            error_middleware,
            body_guard_middleware,
            auth_context_middleware,
        ],
    )
    app[CONFIG] = cfg
    if engine is not None:
        app[ENGINE] = engine
    else:
        app.cleanup_ctx.append(_engine_ctx(cfg))
    app.on_response_prepare.append(_stamp_request_id)
    setup_routes(app)
    return app
