"""Who is calling: request headers -> RequestContext (auth_strategy = noauth).

Invariants:
* the token (`X-Auth-Token`) is never inspected: openstacksdk sends `notused`, glanceclient
  whatever it was given, and Glance's noauth flavour ignores it as well;
* trusted headers, as keystonemiddleware sets them, are honoured when present: `X-Roles`
  (comma list, lower-cased; the `admin` role makes the caller admin), `X-Project-Id` (legacy
  `X-Tenant-Id`) and `X-User-Id`;
* a request with none of those headers runs as admin with no project (`owner: null`), exactly
  as Glance's unauthenticated context does.
"""
from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from cas_glance.api.keys import CONTEXT
from cas_glance.domain.context import RequestContext

_TRUSTED = ("X-Roles", "X-Project-Id", "X-Tenant-Id", "X-User-Id")


def context_from_headers(headers: Mapping[str, str]) -> RequestContext:
    if not any(headers.get(h) for h in _TRUSTED):
        return RequestContext.admin()
    roles = [r.strip().lower() for r in headers.get("X-Roles", "").split(",") if r.strip()]
    project = headers.get("X-Project-Id") or headers.get("X-Tenant-Id") or None
    user = headers.get("X-User-Id") or None
    return RequestContext(project_id=project, user_id=user, roles=tuple(roles), is_admin="admin" in roles)


def request_context(request: web.Request) -> RequestContext:
    """The caller's context, set by the auth middleware for every request."""
    ctx: RequestContext = request[CONTEXT]
    return ctx
