"""The image record: creating one from a POST body, its API view, and tag mutates.

A record is a plain dict: every key of ``BASE_KEYS``, ``properties`` (extra properties, all
strings) and internal keys (``deleted_at``, later ``members``). Invariants: functions here never
mutate their input, they return a new dict; every value they store passed ``check_value``, so
``to_api(record)`` always validates against ``image_schema()``.

This module is the public face of the record: it re-exports the key vocabulary (keys.py),
the access rules (access.py) and the status mutates (lifecycle.py).
"""
from __future__ import annotations

from typing import Any

from cas_glance.domain.access import can_download, can_modify, ensure_can_modify, is_visible
from cas_glance.domain.context import RequestContext
from cas_glance.domain.keys import (
    BASE_KEYS,
    CONTAINER_FORMATS,
    CREATE_FORBIDDEN,
    DISK_FORMATS,
    INTERNAL_KEYS,
    MAX_PROPERTIES,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    PUBLIC_GLANCE_KEYS,
    READ_ONLY,
    RESERVED,
    RESERVED_PREFIX,
    is_reserved,
)
from cas_glance.domain.lifecycle import (
    begin_upload,
    deactivate,
    finish_upload,
    mark_deleted,
    reactivate,
    revert_upload,
)
from cas_glance.domain.schemas import check_value
from cas_glance.domain.status import QUEUED
from cas_glance.domain.types import Record
from cas_glance.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge

__all__ = [
    "BASE_KEYS", "READ_ONLY", "RESERVED", "DISK_FORMATS", "CONTAINER_FORMATS", "MAX_PROPERTIES",
    "MAX_TAGS", "MAX_TAG_LENGTH", "new_image", "to_api", "is_visible", "can_download",
    "can_modify", "ensure_can_modify", "begin_upload", "finish_upload", "revert_upload",
    "mark_deleted", "deactivate", "reactivate", "add_tag", "remove_tag", "check_visibility_change",
    "check_owner_change", "check_property_count", "normalize_tags", "is_reserved",
]

_SETTABLE_BASE = ("name", "visibility", "protected", "os_hidden", "disk_format",
                  "container_format", "min_disk", "min_ram", "owner", "tags")


def new_image(body: Record, ctx: RequestContext, now: str, image_id: str) -> Record:
    """A fresh ``queued`` record from a POST /v2/images body.

    Raises ``Forbidden`` for read-only/reserved/``os_glance*`` keys, an owner other than the
    caller's project (non-admin) and public visibility (non-admin); ``BadRequest`` for values
    failing the schema; ``PayloadTooLarge`` over the tag or property limits. ``image_id`` is
    chosen (and UUID-checked) by the caller; an ``id`` in the body is only schema-checked.
    """
    if not isinstance(body, dict):
        raise BadRequest("Image body must be a JSON object.")
    for key in body:
        _check_create_key(key)
    for key, value in body.items():
        check_value(key, value)
    record = _blank_record(image_id, ctx.project_id, now)
    extras = {}
    for key, value in body.items():
        if key in _SETTABLE_BASE:
            record[key] = value
        elif key != "id":
            extras[key] = value
    record["tags"] = normalize_tags(record["tags"])
    check_visibility_change(record["visibility"], ctx)
    if "owner" in body:
        check_owner_change(ctx.project_id, body["owner"], ctx)
    check_property_count(len(extras), 0)
    record["properties"] = extras
    return record


def _check_create_key(key: str) -> None:
    if key in CREATE_FORBIDDEN or key.startswith(RESERVED_PREFIX):
        kind = "reserved" if is_reserved(key) else "read-only"
        raise Forbidden(f"Attribute '{key}' is {kind}.")


def _blank_record(image_id: str, owner: str | None, now: str) -> Record:
    return {
        "id": image_id, "name": None, "status": QUEUED, "visibility": "shared",
        "protected": False, "os_hidden": False, "checksum": None, "os_hash_algo": None,
        "os_hash_value": None, "size": None, "virtual_size": None, "disk_format": None,
        "container_format": None, "min_disk": 0, "min_ram": 0, "owner": owner, "tags": [],
        "created_at": now, "updated_at": now, "properties": {}, "deleted_at": None,
    }


def normalize_tags(tags: list[str]) -> list[str]:
    """Tags are a set kept in first-seen order; raise ``PayloadTooLarge`` over ``MAX_TAGS``."""
    unique = list(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise PayloadTooLarge(f"Maximum number of tags exceeded ({MAX_TAGS}).")
    return unique


def check_visibility_change(visibility: str, ctx: RequestContext) -> None:
    """Only an admin may make an image public (Glance policy ``publicize_image``)."""
    if visibility == "public" and not ctx.is_admin:
        raise Forbidden("You are not authorized to set image visibility to 'public'.")


def check_owner_change(current: str | None, new: str | None, ctx: RequestContext) -> None:
    """A non-admin may only keep the owner as it is or set it to their own project."""
    if ctx.is_admin or new == current or (new is not None and new == ctx.project_id):
        return
    raise Forbidden(f"You are not permitted to set the owner of an image to '{new}'.")


def check_property_count(count: int, before: int) -> None:
    if count > MAX_PROPERTIES and count > before:
        raise PayloadTooLarge(f"Maximum number of image properties exceeded ({MAX_PROPERTIES}).")


def to_api(record: Record) -> Record:
    """The JSON view of a record: every base key (null when unset), the extras flattened in,
    relative ``self``/``file``/``schema`` links; internal keys and ``os_glance_*`` bookkeeping
    (other than the import outcome keys) are left out."""
    view: dict[str, Any] = {key: record.get(key) for key in BASE_KEYS}
    view["tags"] = list(record.get("tags") or ())
    view["protected"] = bool(view["protected"])
    view["os_hidden"] = bool(view["os_hidden"])
    view["min_disk"] = view["min_disk"] or 0
    view["min_ram"] = view["min_ram"] or 0
    view["visibility"] = view["visibility"] or "shared"
    for key, value in (record.get("properties") or {}).items():
        if key in INTERNAL_KEYS or key in view:
            continue
        if key.startswith(RESERVED_PREFIX) and key not in PUBLIC_GLANCE_KEYS:
            continue
        view[key] = value
    image_id = record["id"]
    view["self"] = f"/v2/images/{image_id}"
    view["file"] = f"/v2/images/{image_id}/file"
    view["schema"] = "/v2/schemas/image"
    return view


def add_tag(record: Record, tag: str, now: str) -> Record:
    """Add ``tag`` (idempotent). ``BadRequest`` over 255 characters, ``PayloadTooLarge`` when the
    image would carry more than ``MAX_TAGS`` tags."""
    if not isinstance(tag, str) or not tag:
        raise BadRequest("A tag must be a non-empty string.")
    if len(tag) > MAX_TAG_LENGTH:
        raise BadRequest(f"Tag is longer than {MAX_TAG_LENGTH} characters.")
    tags = list(record.get("tags") or ())
    if tag in tags:
        return record
    if len(tags) >= MAX_TAGS:
        raise PayloadTooLarge(f"Maximum number of tags exceeded ({MAX_TAGS}).")
    return {**record, "tags": [*tags, tag], "updated_at": now}


def remove_tag(record: Record, tag: str, now: str) -> Record:
    """Remove ``tag``; ``NotFound`` when the image does not carry it."""
    tags = list(record.get("tags") or ())
    if tag not in tags:
        raise NotFound(f"Tag {tag} not found.")
    tags.remove(tag)
    return {**record, "tags": tags, "updated_at": now}
