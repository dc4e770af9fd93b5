"""Image members (sharing): `/v2/images/{id}/members[/{member_id}]`.

Invariants: the image must be visible to the caller (404 otherwise, before any member
rule); the domain decides everything else (shared images only -> 403, owner adds/removes,
only the member changes its own status, duplicates -> 409). Each change is one index
transaction with the visibility re-checked inside it (common.write_image).
"""
from __future__ import annotations

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.context import request_context
from cas_glance.domain import members as domain_members
from cas_glance.errors import BadRequest


async def _field(request: web.Request, key: str) -> object:
    body = await common.json_body(request)
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"The request body must be a JSON object with a '{key}' key.")
    return body[key]


async def create(request: web.Request) -> web.Response:
    member_id = await _field(request, "member")
    ctx, when = request_context(request), common.now()
    record = await common.write_image(
        request, lambda r: domain_members.add_member(r, member_id, ctx, when))
    return common.json_response(domain_members.member_view(record, str(member_id)))


async def index(request: web.Request) -> web.Response:
    record = common.visible_image(request)
    members = domain_members.list_members(record, request_context(request))
    return common.json_response({"members": members, "schema": "/v2/schemas/members"})


async def show(request: web.Request) -> web.Response:
    record = common.visible_image(request)
    member_id = request.match_info["member_id"]
    return common.json_response(
        domain_members.get_member(record, member_id, request_context(request)))


async def update(request: web.Request) -> web.Response:
    status = await _field(request, "status")
    member_id = request.match_info["member_id"]
    ctx, when = request_context(request), common.now()
    record = await common.write_image(
        request, lambda r: domain_members.update_member(r, member_id, status, ctx, when))
    return common.json_response(domain_members.member_view(record, member_id))


async def delete(request: web.Request) -> web.Response:
    member_id = request.match_info["member_id"]
    ctx, when = request_context(request), common.now()
    await common.write_image(
        request, lambda r: domain_members.remove_member(r, member_id, ctx, when))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    base = "/v2/images/{image_id}/members"
    app.router.add_route("POST", base, create)
    app.router.add_route("GET", base, index)
    app.router.add_route("GET", base + "/{member_id}", show)
    app.router.add_route("PUT", base + "/{member_id}", update)
    app.router.add_route("DELETE", base + "/{member_id}", delete)
