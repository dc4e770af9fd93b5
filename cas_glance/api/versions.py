"""Version discovery: `GET /` (300), `GET /versions` (200), `/v2` and `/v2/` (200).

Invariants: the documents need no auth and carry absolute hrefs (`<public_endpoint>/v2/`, or
built from the request's scheme and Host when no public endpoint is configured), because
keystoneauth uses the href as its base URL from then on. Exactly one entry is CURRENT. The
list is the one Glance serves without multi-store or cache (glance-v2-api.md 1), so
glanceclient's `has_version()` gates behave as they do against Glance.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from cas_glance.api.keys import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CURRENT = "v2.17"
SUPPORTED = ("v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")


def base_url(request: web.Request) -> str:
    """Absolute URL of the service root, without a trailing slash."""
    configured = request.app[CONFIG].public_endpoint
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def versions_document(request: web.Request) -> dict[str, object]:
    href = f"{base_url(request)}/v2/"
    entries = [(CURRENT, "CURRENT")] + [(v, "SUPPORTED") for v in SUPPORTED]
    return {
        "versions": [
            {"id": vid, "status": status, "links": [{"rel": "self", "href": href}]}
            for vid, status in entries
        ]
    }


def multiple_choices(request: web.Request) -> web.Response:
    """The 300 answer: `GET /` and any path whose first segment is not a version we serve."""
    return web.json_response(versions_document(request), status=300)


async def root(request: web.Request) -> web.Response:
    return multiple_choices(request)


async def versions(request: web.Request) -> web.Response:
    return web.json_response(versions_document(request))


def setup(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/versions", versions)
    # openstacksdk configured with endpoint `.../v2` probes exactly that path.
    app.router.add_get("/v2", versions)
    app.router.add_get("/v2/", versions)


@web.middleware
async def version_negotiation(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes outside /v2 (`/v1/images`, `/v3`) get the 300 list, as Glance answers;
    unknown routes under /v2 stay 404 (the error middleware renders it)."""
    routing_error = getattr(request.match_info, "http_exception", None)
    if routing_error is not None and routing_error.status == 404:
        first = request.path.lstrip("/").split("/", 1)[0]
        if first != "v2":
            return multiple_choices(request)
    return await handler(request)
