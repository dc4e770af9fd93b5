"""Who may see, download and change an image (Glance's default policy, noauth-aware).

Invariants: an admin passes every check; a caller with no project owns nothing; an image in
``pending_delete``/``deleted`` is visible to nobody (the API answers 404, never 403).
Membership comes from ``record.get("members", {})``: ``{project_id: member_status}``.
"""
from __future__ import annotations

from cas_glance.domain.context import RequestContext
from cas_glance.domain.status import DEACTIVATED, GONE_STATUSES
from cas_glance.domain.types import Record
from cas_glance.errors import Forbidden


def is_visible(record: Record, ctx: RequestContext) -> bool:
    """May the caller GET this image by id? (Glance ``is_image_visible``.)

    Admin: always. Others: public and community images, images without an owner, their own,
    and shared images they are a member of (in any member status).
    """
    if record.get("status") in GONE_STATUSES:
        return False
    if ctx.is_admin or record.get("owner") is None:
        return True
    if record.get("visibility") in ("public", "community") or ctx.owns(record):
        return True
    return (
        record.get("visibility") == "shared"
        and ctx.project_id is not None
        and ctx.project_id in record.get("members", {})
    )


def can_download(record: Record, ctx: RequestContext) -> None:
    """Raise ``Forbidden`` when a non-admin asks for a deactivated image's data."""
    if record.get("status") == DEACTIVATED and not ctx.is_admin:
        raise Forbidden("The requested image has been deactivated. "
                        "Image data download is forbidden.")


def can_modify(record: Record, ctx: RequestContext) -> bool:
    """True for an admin or the owning project (PATCH, upload, stage, tags, delete)."""
    return ctx.is_admin or ctx.owns(record)


def ensure_can_modify(record: Record, ctx: RequestContext) -> None:
    """Raise ``Forbidden`` unless ``can_modify``; call after the visibility check (404 first)."""
    if not can_modify(record, ctx):
        raise Forbidden("You are not permitted to modify this image.")
