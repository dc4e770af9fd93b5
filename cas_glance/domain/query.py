"""GET /v2/images: parse the query string once (``parse_list_query``), then pick one page
(``select``) and build the paging links.

Invariants: ``select`` never returns deleted, pending_delete or killed images; it honours the
caller's visibility (Glance's list rules, which are stricter than ``is_visible``); the order is
total (``created_at`` and ``id`` are always appended as tie-breakers); ``next`` is given
whenever a page is full, so the last page may be empty. All parsing errors are ``BadRequest``
raised by ``parse_list_query``; ``select`` raises only for an unknown marker.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from urllib.parse import urlencode

from cas_glance.domain import filters as f
from cas_glance.domain.access import is_visible
from cas_glance.domain.context import RequestContext
from cas_glance.domain.keys import BASE_KEYS
from cas_glance.domain.listing import Listing
from cas_glance.domain.sorting import page
from cas_glance.domain.status import DELETED, KILLED, PENDING_DELETE, STATUSES
from cas_glance.domain.types import Predicate, Record
from cas_glance.errors import BadRequest

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = frozenset({"name", "status", "container_format", "disk_format", "size", "id",
                       "created_at", "updated_at"})
SORT_DIRS = ("asc", "desc")
VISIBILITIES = frozenset({"public", "private", "shared", "community", "all"})
MEMBER_STATUSES = frozenset({"accepted", "pending", "rejected", "all"})
NEVER_LISTED = frozenset({DELETED, PENDING_DELETE, KILLED})
_IN_FILTERS = {"name": None, "id": None, "status": frozenset(STATUSES),
               "container_format": None, "disk_format": None}
_PAGING_KEYS = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir"})


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request; ``predicates`` are the filters, built once."""

    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"), ("id", "desc"))
    visibility: str | None = None
    member_status: str = "accepted"
    os_hidden: bool = False
    predicates: tuple[Predicate, ...] = field(default=(), compare=False)


def parse_list_query(params: list[tuple[str, str]]) -> ListQuery:
    """Parse the query parameters of GET /v2/images (repeats kept in order); ``BadRequest``
    for any bad value, unknown sort key or direction, mixed sort syntaxes or ``changes-since``."""
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    if "changes-since" in grouped:
        raise BadRequest("The 'changes-since' filter is not available on the v2 API.")
    visibility = _choice(grouped, "visibility", VISIBILITIES, None)
    member_status = _choice(grouped, "member_status", MEMBER_STATUSES, "accepted")
    return ListQuery(
        limit=_limit(grouped), marker=_last(grouped, "marker"), sort=_sort(grouped),
        visibility=visibility, member_status=member_status or "accepted",
        os_hidden=_os_hidden(grouped),
        predicates=tuple(_predicates(grouped)),
    )


def _last(grouped: dict[str, list[str]], key: str) -> str | None:
    values = grouped.get(key)
    return values[-1] if values else None


def _choice(grouped: dict[str, list[str]], key: str, allowed: frozenset[str],
            default: str | None) -> str | None:
    value = _last(grouped, key)
    if value is None:
        return default
    if value not in allowed:
        raise BadRequest(f"Invalid {key} value: {value}")
    return value


def _os_hidden(grouped: dict[str, list[str]]) -> bool:
    raw = _last(grouped, "os_hidden")
    return False if raw is None else f.parse_bool("os_hidden", raw)


def _limit(grouped: dict[str, list[str]]) -> int:
    raw = _last(grouped, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    return min(f.parse_nonneg_int("limit", raw), MAX_LIMIT)


def _sort(grouped: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    if "sort" in grouped:
        if "sort_key" in grouped or "sort_dir" in grouped:
            raise BadRequest("Old and new sorting syntax cannot be combined.")
        pairs = [_sort_item(item) for raw in grouped["sort"] for item in raw.split(",")]
        return _with_tiebreakers(pairs, "desc")
    keys = [_sort_key(k) for k in grouped.get("sort_key", [])] or ["created_at"]
    dirs = [_sort_dir(d) for d in grouped.get("sort_dir", [])]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise BadRequest("Number of sort dirs does not match the number of sort keys.")
    default = dirs[0] if len(dirs) == 1 else "desc"
    dirs = dirs if len(dirs) > 1 else [default] * len(keys)
    return _with_tiebreakers(list(zip(keys, dirs)), default)


def _sort_item(item: str) -> tuple[str, str]:
    key, _, direction = item.strip().partition(":")
    return _sort_key(key), _sort_dir(direction) if direction else "desc"


def _sort_key(key: str) -> str:
    key = key.strip()
    if key not in SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {key}. It is not supported.")
    return key


def _sort_dir(direction: str) -> str:
    direction = direction.strip()
    if direction not in SORT_DIRS:
        raise BadRequest(f"Invalid sort direction: {direction}")
    return direction


def _with_tiebreakers(pairs: list[tuple[str, str]], default: str) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for key, direction in pairs:
        seen.setdefault(key, direction)
    for key in ("created_at", "id"):
        seen.setdefault(key, default)
    return tuple(seen.items())


def _predicates(grouped: dict[str, list[str]]) -> list[Predicate]:
    preds: list[Predicate] = []
    for key, values in grouped.items():
        if key in _PAGING_KEYS or key in ("visibility", "member_status", "os_hidden"):
            continue
        if key == "tag":
            preds.append(f.tags_filter(values))
        else:
            preds.extend(_one_filter(key, value) for value in values)
    return preds


def _one_filter(key: str, value: str) -> Predicate:
    if key in _IN_FILTERS:
        return f.in_or_exact(key, value, _IN_FILTERS[key])
    if key == "protected":
        return f.bool_filter(key, value)
    if key in ("size_min", "size_max"):
        return f.size_filter(key, value)
    if key in ("created_at", "updated_at"):
        return f.time_filter(key, value)
    if key in BASE_KEYS:
        return f.base_exact(key, value)
    return f.extra_exact(key, value)


# ---- selection ------------------------------------------------------------------------------

def visibility_rule(q: ListQuery, ctx: RequestContext) -> Predicate:
    """Glance's list rules. Admin: everything. Others: public, community, their own, and shared
    images where they are a member in ``member_status``. Then, without a ``visibility``
    parameter, community images show only to their owner; with one, only that visibility
    (``all``: no restriction)."""
    project, wanted, member_status = ctx.project_id, q.visibility, q.member_status

    def base(r: Record) -> bool:
        vis = r["visibility"]
        if vis == "public" or vis == "community" or (project is not None and r["owner"] == project):
            return True
        if vis != "shared" or project is None:
            return False
        status = r.get("members", {}).get(project)
        return status is not None and (member_status == "all" or status == member_status)

    if ctx.is_admin:
        if wanted == "all":
            return lambda r: True
        if wanted is not None:
            return lambda r: r["visibility"] == wanted
        return lambda r: r["visibility"] != "community" or (
            project is not None and r["owner"] == project)
    if wanted == "all":
        return base
    if wanted is not None:
        return lambda r: r["visibility"] == wanted and base(r)
    return lambda r: base(r) and (r["visibility"] != "community" or (
        project is not None and r["owner"] == project))


def select(records: list[Record], q: ListQuery,
           ctx: RequestContext) -> tuple[list[Record], str | None]:
    """One page of ``records`` matching ``q`` for ``ctx``, and the marker for ``next`` (the last
    id when the page is full, else None). ``BadRequest`` for a marker the caller cannot see.

    Records must carry every base key (as ``new_image`` makes them)."""
    marker = _find_marker(records, q.marker, ctx) if q.marker is not None else None
    hidden = q.os_hidden
    if ctx.is_admin and q.visibility is None and ctx.project_id is None:
        # the noauth default, inlined: one pass, no per-record call
        matching = [r for r in records
                    if r["status"] not in NEVER_LISTED and bool(r["os_hidden"]) is hidden
                    and r["visibility"] != "community"]
    else:
        visible = visibility_rule(q, ctx)
        matching = [r for r in records
                    if r["status"] not in NEVER_LISTED and bool(r["os_hidden"]) is hidden
                    and visible(r)]
    for pred in q.predicates:
        matching = list(filter(pred, matching))
    result = page(matching, q.sort, q.limit, marker)
    full = q.limit > 0 and len(result) == q.limit
    return result, (result[-1]["id"] if full else None)


def _find_marker(records: list[Record], marker: str, ctx: RequestContext) -> Record:
    ids = [r.get("id") for r in records]
    return _check_marker(records[ids.index(marker)] if marker in ids else None, marker, ctx)


def _check_marker(r: Record | None, marker: str, ctx: RequestContext) -> Record:
    if r is not None and r.get("status") not in NEVER_LISTED and is_visible(r, ctx):
        return r
    raise BadRequest(f"Invalid marker. Image {marker} could not be found.")


def listed_rule(q: ListQuery, ctx: RequestContext) -> Predicate:
    """The whole membership test of ``select`` for one record: never-listed statuses,
    ``os_hidden``, the list visibility rules and every filter."""
    hidden = q.os_hidden
    preds = q.predicates
    if ctx.is_admin and q.visibility is None and ctx.project_id is None:
        def shown(r: Record) -> bool:
            return (r["status"] not in NEVER_LISTED and bool(r["os_hidden"]) is hidden
                    and r["visibility"] != "community")
    else:
        visible = visibility_rule(q, ctx)

        def shown(r: Record) -> bool:
            return (r["status"] not in NEVER_LISTED and bool(r["os_hidden"]) is hidden
                    and visible(r))
    if not preds:
        return shown
    if len(preds) == 1:
        only = preds[0]
        return lambda r: shown(r) and only(r)
    return lambda r: shown(r) and all(p(r) for p in preds)


def select_listing(listing: Listing, q: ListQuery,
                   ctx: RequestContext) -> tuple[list[Record], str | None]:
    """``select`` over a ``Listing``'s records, walking its kept order from the marker and
    stopping once ``limit`` records matched (same page, same ``next``, same errors)."""
    marker = (_check_marker(listing.by_id.get(q.marker), q.marker, ctx)
              if q.marker is not None else None)
    if q.limit <= 0:
        return [], None
    result = list(islice(filter(listed_rule(q, ctx), listing.after(q.sort, marker)), q.limit))
    full = len(result) == q.limit
    return result, (result[-1]["id"] if full else None)


# ---- links ----------------------------------------------------------------------------------

def _encode(params: list[tuple[str, str]]) -> str:
    return urlencode([(k, v) for k, v in params if k != "marker"], safe=":,")


def first_link(params: list[tuple[str, str]]) -> str:
    """``/v2/images`` with the request's query minus ``marker`` (repeated parameters kept)."""
    query = _encode(params)
    return f"/v2/images?{query}" if query else "/v2/images"


def next_link(params: list[tuple[str, str]], marker: str) -> str:
    """``first_link`` plus ``marker=<id>`` for the next page."""
    query = _encode(params)
    marker_q = urlencode([("marker", marker)])
    return f"/v2/images?{query}&{marker_q}" if query else f"/v2/images?{marker_q}"
