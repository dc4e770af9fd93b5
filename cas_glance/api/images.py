"""Image metadata resource: create, list, show, update (JSON-patch), delete.

Invariants:
* the domain decides every rule (fields, policy, transitions); this module only translates
  HTTP to domain calls and domain results to Glance's response shapes;
* create answers 201 with an absolute Location and the `OpenStack-image-import-methods`
  header (the sdk reads it before choosing an upload path);
* PATCH accepts exactly the two Glance JSON-patch media types (else 415 + Accept-Patch);
* list pages carry `first`, `schema`, and `next` whenever the page is full (so a last page may
  be empty), preserving repeated query parameters.
"""
from __future__ import annotations

import json
import uuid

from aiohttp import web

from cas_glance.api import common
from cas_glance.api.context import request_context
from cas_glance.api.versions import base_url
from cas_glance.domain import image as domain_image
from cas_glance.domain import patch as domain_patch
from cas_glance.domain import query as domain_query
from cas_glance.domain.listing import Listing
from cas_glance.errors import BadRequest, Forbidden

# We implement none of Glance's interoperable import methods (stage/import), so we advertise
# none: openstacksdk's use_import=True then fails with a clear message instead of a 404.
IMPORT_METHODS = ""

PATCH_TYPES = (domain_patch.PATCH_V21, domain_patch.PATCH_V20)


def _requested_id(body: common.Record) -> str:
    """The caller's `id` when it is a UUID string (400 otherwise), else a fresh one."""
    if "id" not in body:
        return str(uuid.uuid4())
    requested = body["id"]
    if isinstance(requested, str):
        try:
            uuid.UUID(requested)
            return requested  # kept as the caller spelled it, as Glance does
        except ValueError:
            pass
    raise BadRequest(f"Invalid image id {requested!r}: it must be a UUID.")


async def create(request: web.Request) -> web.Response:
    body = await common.json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    new_id = _requested_id(body)
    record = domain_image.new_image(body, request_context(request), common.now(), new_id)
    eng = common.engine(request)
    record = await eng.offload.io(eng.index.create_image, record)
    image = domain_image.to_api(record)
    headers = {
        "Location": f"{base_url(request)}/v2/images/{image['id']}",
        "OpenStack-image-import-methods": IMPORT_METHODS,
    }
    return common.json_response(image, status=201, headers=headers)


def _image_json(record: common.Record) -> str:
    return json.dumps(domain_image.to_api(record), separators=(", ", ": "))


async def index(request: web.Request) -> web.Response:
    params = list(request.query.items())
    q = domain_query.parse_list_query(params)
    ctx = request_context(request)

    def one_page(listing: Listing) -> tuple[list[str], str | None]:
        # walk the kept order from the marker; each image's JSON is encoded once per record
        page, marker = domain_query.select_listing(listing, q, ctx)
        return [listing.memo(r, _image_json) for r in page], marker

    images, marker = common.engine(request).index.listing(one_page)
    # the body json_response would give for {"images", "first", "schema"[, "next"]}, spliced
    # from the per-image encodings
    parts = ['{"images": [', ", ".join(images), '], "first": ',
             json.dumps(domain_query.first_link(params)), ', "schema": "/v2/schemas/images"']
    if marker is not None:
        parts += [', "next": ', json.dumps(domain_query.next_link(params, marker))]
    parts.append("}")
    return web.Response(text="".join(parts), content_type="application/json")


async def show(request: web.Request) -> web.Response:
    return common.json_response(domain_image.to_api(common.visible_image(request)))


async def update(request: web.Request) -> web.Response:
    media_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type not in PATCH_TYPES:
        # raised as aiohttp's exception so the Accept-Patch header survives the error middleware
        raise web.HTTPUnsupportedMediaType(
            text=f"Unsupported Content-Type {media_type or '(none)'!r} for PATCH",
            headers={"Accept-Patch": ", ".join(PATCH_TYPES)},
        )
    ops = await common.json_body(request)
    if not isinstance(ops, list):
        raise BadRequest("A JSON-patch document must be a JSON array of operations.")
    ctx = request_context(request)
    when = common.now()
    record = await common.write_image(
        request, lambda r: domain_patch.apply_patch(r, ops, media_type, ctx, when))
    return common.json_response(domain_image.to_api(record))


async def delete(request: web.Request) -> web.Response:
    iid = common.image_id(request)
    ctx = request_context(request)
    cfg = common.config(request)
    eng = common.engine(request)
    when = common.now()

    def mutate(record: common.Record) -> common.Record:
        common.check_visible(record, ctx, iid)
        return domain_image.mark_deleted(record, ctx, delayed=cfg.delayed_delete, now=when)

    await eng.offload.io(eng.index.delete_image, iid, mutate)
    return web.Response(status=204)


async def tasks(request: web.Request) -> web.Response:
    """v2.12: the import tasks of an image. We run none, so the list is empty."""
    common.visible_image(request)
    return common.json_response({"tasks": []})


async def locations(request: web.Request) -> web.Response:
    """v2.17 location API: a content-addressed store has no per-image locations to add or
    show, so both verbs answer 403 as Glance does with the location API turned off."""
    common.visible_image(request)
    raise Forbidden("Image locations are not available on this image service.")


def setup(app: web.Application) -> None:
    app.router.add_route("POST", "/v2/images", create)
    app.router.add_route("GET", "/v2/images", index)
    app.router.add_route("GET", "/v2/images/{image_id}", show)
    app.router.add_route("PATCH", "/v2/images/{image_id}", update)
    app.router.add_route("DELETE", "/v2/images/{image_id}", delete)
    app.router.add_route("GET", "/v2/images/{image_id}/tasks", tasks)
    app.router.add_route("GET", "/v2/images/{image_id}/locations", locations)
    app.router.add_route("POST", "/v2/images/{image_id}/locations", locations)
