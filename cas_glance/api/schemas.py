"""JSON schemas: `GET /v2/schemas/{image,images,member,members}`.

Invariant: served straight from the domain, which owns the field definitions, so every image
response we send validates against the schema glanceclient builds its model from.
"""
from __future__ import annotations

from aiohttp import web

from cas_glance.api import common
from cas_glance.domain import schemas as domain_schemas

_SCHEMAS = {
    "image": domain_schemas.image_schema,
    "images": domain_schemas.images_schema,
    "member": domain_schemas.member_schema,
    "members": domain_schemas.members_schema,
}


async def show(request: web.Request) -> web.Response:
    return common.json_response(_SCHEMAS[request.match_info["name"]]())


def setup(app: web.Application) -> None:
    app.router.add_route("GET", "/v2/schemas/{name:image|images|member|members}", show)
