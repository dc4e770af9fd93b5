"""Image sharing: the member list of a ``shared`` image (glance-v2-api.md 2.9).

Storage: ``record["members"]`` is ``{project_id: status}`` (what visibility and listing read)
and ``record["member_stamps"]`` is ``{project_id: [created_at, updated_at]}``; both are
internal keys that ``to_api`` never shows. Invariants: members exist only on ``shared``
images (every call on another visibility is 403); only the owner (or an admin) adds and
removes members; only the member itself (or an admin who is not the owner) changes its
status; a caller sees every member if they own the image or are admin, otherwise only their
own entry. Mutates return a new record and never touch their input.
"""
from __future__ import annotations

from cas_glance.domain.access import can_modify
from cas_glance.domain.context import RequestContext
from cas_glance.domain.types import Record
from cas_glance.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge

MEMBER_STATUSES = ("pending", "accepted", "rejected")
MAX_MEMBERS = 128
MAX_MEMBER_ID = 255


def _require_shared(record: Record) -> None:
    if record.get("visibility") != "shared":
        raise Forbidden("Only shared images have members.")


def _require_member(record: Record, member_id: str) -> None:
    if member_id not in record.get("members", {}):
        raise NotFound(f"{member_id} is not a member of image {record.get('id')}.")


def _with(record: Record, members: Record, stamps: Record, now: str) -> Record:
    return {**record, "members": members, "member_stamps": stamps, "updated_at": now}


def add_member(record: Record, member_id: object, ctx: RequestContext, now: str) -> Record:
    """Share with ``member_id`` (status ``pending``). 403 unless shared and the caller may
    modify the image; 400 for a bad id; 409 for a duplicate; 413 over ``MAX_MEMBERS``."""
    _require_shared(record)
    if not can_modify(record, ctx):
        raise Forbidden("Only the image owner may add members.")
    if not isinstance(member_id, str) or not member_id or len(member_id) > MAX_MEMBER_ID:
        raise BadRequest(f"Member must be a project id of 1 to {MAX_MEMBER_ID} characters.")
    members = dict(record.get("members", {}))
    if member_id in members:
        raise Conflict(f"Member {member_id} already exists for image {record.get('id')}.")
    if len(members) >= MAX_MEMBERS:
        raise PayloadTooLarge(f"Maximum number of image members exceeded ({MAX_MEMBERS}).")
    members[member_id] = "pending"
    stamps = {**record.get("member_stamps", {}), member_id: [now, now]}
    return _with(record, members, stamps, now)


def update_member(record: Record, member_id: str, status: object, ctx: RequestContext,
                  now: str) -> Record:
    """Set the member's status. 403 unless shared and the caller is that member (or an admin
    who does not own the image); 404 for a non-member; 400 for an unknown status."""
    _require_shared(record)
    is_member = ctx.project_id is not None and ctx.project_id == member_id
    if not (is_member or (ctx.is_admin and not ctx.owns(record))):
        raise Forbidden("Only the member may change its membership status.")
    _require_member(record, member_id)
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Member status must be one of {', '.join(MEMBER_STATUSES)}.")
    members = {**record["members"], member_id: status}
    created = record.get("member_stamps", {}).get(member_id, [now, now])[0]
    stamps = {**record.get("member_stamps", {}), member_id: [created, now]}
    return _with(record, members, stamps, now)


def remove_member(record: Record, member_id: str, ctx: RequestContext, now: str) -> Record:
    """Stop sharing with ``member_id``. 403 unless shared and the caller may modify the
    image; 404 for a non-member."""
    _require_shared(record)
    if not can_modify(record, ctx):
        raise Forbidden("Only the image owner may remove members.")
    _require_member(record, member_id)
    members = {k: v for k, v in record["members"].items() if k != member_id}
    stamps = {k: v for k, v in record.get("member_stamps", {}).items() if k != member_id}
    return _with(record, members, stamps, now)


def member_view(record: Record, member_id: str) -> Record:
    """The JSON view of one membership (validates against ``member_schema()``)."""
    created, updated = record.get("member_stamps", {}).get(
        member_id, [record["created_at"], record["updated_at"]])
    return {
        "image_id": record["id"], "member_id": member_id,
        "status": record["members"][member_id], "created_at": created, "updated_at": updated,
        "schema": "/v2/schemas/member",
    }


def list_members(record: Record, ctx: RequestContext) -> list[Record]:
    """The memberships the caller may see: all for the owner or an admin, else only their
    own. 403 when the image is not shared."""
    _require_shared(record)
    members = record.get("members", {})
    if ctx.is_admin or ctx.owns(record):
        wanted = sorted(members)
    else:
        wanted = [ctx.project_id] if ctx.project_id in members else []
    return [member_view(record, m) for m in wanted]


def get_member(record: Record, member_id: str, ctx: RequestContext) -> Record:
    """One membership; 404 when it does not exist or the caller may not see it."""
    for view in list_members(record, ctx):
        if view["member_id"] == member_id:
            return view
    raise NotFound(f"{member_id} is not a member of image {record.get('id')}.")
