"""Image tags: `PUT /v2/images/{id}/tags/{tag}` (idempotent) and `DELETE` (404 when absent).

Invariant: both are one index transaction each; the domain enforces the tag rules
(length -> 400, count -> 413, absent on delete -> 404). glanceclient sends a Content-Type and
`Content-Length: 0` with the PUT: there is no body to read.
"""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.context import request_context
from cas_glance.domain import image as domain_image

TagOp = Callable[[common.Record, str, str], common.Record]


def _tag_mutate(request: web.Request, op: TagOp) -> Callable[[common.Record], common.Record]:
    ctx = request_context(request)
    tag = request.match_info["tag"]
    when = common.now()

    def mutate(record: common.Record) -> common.Record:
        domain_image.ensure_can_modify(record, ctx)
        result: common.Record = op(record, tag, when)
        return result

    return mutate


async def add(request: web.Request) -> web.Response:
    await common.write_image(request, _tag_mutate(request, domain_image.add_tag))
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    await common.write_image(request, _tag_mutate(request, domain_image.remove_tag))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_route("PUT", "/v2/images/{image_id}/tags/{tag}", add)
    app.router.add_route("DELETE", "/v2/images/{image_id}/tags/{tag}", remove)
