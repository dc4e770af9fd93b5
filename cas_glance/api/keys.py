"""Typed keys for everything the HTTP edge keeps on the app or the request.

One place, so a handler never invents a string key and no module keeps state in a global
(STYLE.md 4: "No Singletons Please"). App-level values are `web.AppKey`s; per-request values
are `web.RequestKey`s.
"""
from __future__ import annotations

from aiohttp import web

from cas_glance.config import Config
from cas_glance.domain.context import RequestContext
from cas_glance.engine import Engine

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)

# per request
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)  # x-openstack-request-id
CONTEXT: web.RequestKey[RequestContext] = web.RequestKey("context", RequestContext)  # auth mw
BODY_READ: web.RequestKey[bool] = web.RequestKey("body_read", bool)  # upload consumed bytes
