"""Admin actions: `POST /v2/images/{id}/actions/deactivate` and `.../reactivate` (204).

Invariant: the domain decides who may (admin only -> 403) and from which status (a repeat is
a no-op, other statuses -> 403); each action is one index transaction.
"""
from __future__ import annotations

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.context import request_context
from cas_glance.domain import image as domain_image


async def deactivate(request: web.Request) -> web.Response:
    ctx, when = request_context(request), common.now()
    await common.write_image(request, lambda r: domain_image.deactivate(r, ctx, when))
    return web.Response(status=204)


async def reactivate(request: web.Request) -> web.Response:
    ctx, when = request_context(request), common.now()
    await common.write_image(request, lambda r: domain_image.reactivate(r, ctx, when))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_route("POST", "/v2/images/{image_id}/actions/deactivate", deactivate)
    app.router.add_route("POST", "/v2/images/{image_id}/actions/reactivate", reactivate)
