"""Discovery documents under `/v2/info`.

`GET /v2/info/import` lists the interoperable import methods we implement: none, matching the
empty `OpenStack-image-import-methods` header on create, so a client that checks before
trying (glanceclient's image-create-via-import, the sdk's use_import) gets a clear refusal.
`/v2/info/stores` is deliberately absent (404): Glance answers that way without multi-store.
"""
from __future__ import annotations

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.images import IMPORT_METHODS


async def import_methods(request: web.Request) -> web.Response:
    methods = [m for m in IMPORT_METHODS.split(",") if m]
    return common.json_response({"import-methods": {
        "description": "Import methods available.", "type": "array", "value": methods}})


def setup(app: web.Application) -> None:
    app.router.add_route("GET", "/v2/info/import", import_methods)
