"""The one place where errors become HTTP responses (STYLE.md rule 16).

Invariants:
* every `cas_glance.errors` kind maps to exactly one Glance status here, nowhere else;
* error bodies are negotiated on `Accept` the way Glance's WebOb does (glance-v2-api.md 5):
  `*/*` or html -> text/html, application/json -> a flat JSON object, empty/missing ->
  text/plain. glanceclient always sends `*/*` and crashes on flat JSON, so html is the default;
* a store failure after the upload body was (partly) consumed is a 500, never a 503: clients
  (Nova) retry a 503 by re-sending a half-read file (DESIGN.md, error contract);
* unexpected exceptions become a Glance-style 500 and are logged with their traceback.
"""
from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from aiohttp import http_exceptions, web
from aiohttp.client_exceptions import ClientPayloadError

from cas_glance import errors
from cas_glance.api.keys import BODY_READ

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Order matters: subclasses before their bases (StorageFull is a StoreFailure,
# InvalidTransition is a Conflict).
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.BadRequest, 400),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.InvalidTransition, 409),
    (errors.Conflict, 409),
    (errors.Gone, 410),
    (errors.PayloadTooLarge, 413),
    (errors.StorageFull, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.RangeNotSatisfiable, 416),
    (errors.StoreFailure, 503),
    (errors.CorruptBlob, 500),
    (errors.IndexMismatch, 500),
)

# Headers of an aiohttp HTTPException that describe its own body; we write a new body.
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "transfer-encoding"}


def status_for(exc: BaseException) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def _negotiate(accept: str) -> str:
    """Pick text/html, application/json or text/plain from an Accept header (q-values honoured;
    an empty or missing header, or nothing acceptable, gives text/plain as WebOb does)."""
    offers = ("text/html", "application/json", "text/plain")
    best, best_q = "text/plain", 0.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        if not mtype:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.replace(" ", "").startswith("q="):
                try:
                    q = float(param.split("=", 1)[1])
                except ValueError:
                    q = 0.0
        for offer in offers:
            major = offer.split("/")[0]
            if mtype in (offer, "*/*", f"{major}/*") and q > best_q:
                best, best_q = offer, q
                break  # offers are in preference order: the first match wins a tie
    return best


def error_response(
    status: int, message: str, accept: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A Glance-style error response; `message` is plain text."""
    title = HTTPStatus(status).phrase
    code = f"{status} {title}"
    kind = _negotiate(accept)
    if kind == "text/html":
        body = (
            f"<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n"
            f"  {html.escape(message)}<br /><br />\n\n\n\n </body>\n</html>"
        )
    elif kind == "application/json":
        body = json.dumps({"message": f"{message}<br /><br />\n\n\n", "code": code, "title": title})
    else:
        body = f"{code}\n\n{message}\n\n   "
    resp = web.Response(status=status, text=body, content_type=kind, charset="UTF-8")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """Router 404/405, aiohttp's own 413 and anything the api raised as web.HTTP*."""
    if exc.status < 400:
        return exc  # redirects etc. pass through unchanged
    default = f"{exc.status}: {exc.reason}"
    message = exc.text if exc.text and exc.text != default else _DEFAULT_MESSAGES.get(exc.status, exc.reason)
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    return error_response(exc.status, message, request.headers.get("Accept", ""), headers)


_DEFAULT_MESSAGES = {
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    413: "The request body is too large.",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure of the inner chain into a Glance-style error response."""
    accept = request.headers.get("Accept", "")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return _from_http_exception(request, exc)
    except errors.RangeNotSatisfiable as exc:
        return error_response(416, str(exc), accept, {"Content-Range": f"bytes */{exc.size}"})
    except errors.StoreFailure as exc:
        status = status_for(exc)
        if status == 503 and request.get(BODY_READ):
            status = 500  # never invite a retry that re-sends a half-read body
        log.warning("store failure on %s %s: %s (-> %d)", request.method, request.path, exc, status)
        return error_response(status, str(exc) or "The image store failed.", accept)
    except errors.CasGlanceError as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s failed: %r", request.method, request.path, exc)
        return error_response(status, str(exc) or HTTPStatus(status).phrase, accept)
    except (ClientPayloadError, http_exceptions.HttpProcessingError, ConnectionResetError) as exc:
        # The client sent a broken or truncated body (or went away): its fault, no traceback.
        log.info("%s %s: bad request body: %s", request.method, request.path, exc)
        return error_response(400, f"The request body could not be read: {exc}", accept)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "The server has either erred or is incapable of performing "
                              "the requested operation.", accept)
