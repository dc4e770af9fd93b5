"""JSON-patch of an image (PATCH /v2/images/{id}), both Glance media types.

Invariants: the whole patch is decoded and checked (400/403) before any op is applied; ops
then apply in order to a copy, so a failing op leaves nothing half-applied (the input record is
never mutated). Pointers are one level deep with ``~0``/``~1`` escapes; ``/tags`` is replaced
whole. v2.1 ``add`` upserts; v2.0 ``add`` on an existing key is 409.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cas_glance.domain.access import ensure_can_modify
from cas_glance.domain.context import RequestContext
from cas_glance.domain.image import (
    check_owner_change,
    check_property_count,
    check_visibility_change,
    normalize_tags,
)
from cas_glance.domain.keys import BASE_KEYS, READ_ONLY, is_reserved
from cas_glance.domain.schemas import check_value
from cas_glance.domain.types import Record
from cas_glance.errors import BadRequest, Conflict, Forbidden, UnsupportedMediaType

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
PATCH_MEDIA_TYPES = (PATCH_V21, PATCH_V20)
OPS = ("add", "replace", "remove")
_FORMAT_KEYS = ("disk_format", "container_format")
_FORMAT_STATUSES = ("queued", "importing")
_BAD_ESCAPE = re.compile(r"~[^01]|~$")


@dataclass(frozen=True)
class Change:
    """One decoded op: ``op`` in ``OPS``, the unescaped top-level ``key``, and the value."""

    op: str
    key: str
    value: Any = None


def apply_patch(record: Record, ops: object, media_type: str, ctx: RequestContext,
                now: str) -> Record:
    """The record after applying ``ops`` (a decoded JSON body) sent as ``media_type``.

    Raises ``UnsupportedMediaType`` for another media type; ``BadRequest`` for a malformed
    patch or a value failing the schema; ``Forbidden`` for read-only/reserved keys, removing a
    base key, an owner or visibility change the caller may not make, a format change after
    queued/importing, or a caller who does not own the image; ``Conflict`` for remove/replace
    of a missing extra (and v2.0 add of an existing key); ``PayloadTooLarge`` over 128 extras
    or tags.
    """
    if media_type not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(f"Unsupported patch media type: {media_type}")
    changes = decode_patch(ops, media_type)
    ensure_can_modify(record, ctx)
    new = {**record, "properties": dict(record.get("properties") or {})}
    for change in changes:
        _apply(new, change, media_type, ctx)
    check_property_count(len(new["properties"]), len(record.get("properties") or {}))
    new["updated_at"] = now
    return new


def decode_patch(ops: object, media_type: str) -> list[Change]:
    """Parse and statically check every op (shape, pointer, key permissions, value schema)."""
    if not isinstance(ops, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in ops:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        op, pointer = (_op_v21 if media_type == PATCH_V21 else _op_v20)(raw)
        key = decode_pointer(pointer)
        _check_key(op, key)
        if op != "remove":
            if "value" not in raw:
                raise BadRequest(f'Operation "{op}" requires a member named "value".')
            check_value(key, raw["value"])
        changes.append(Change(op, key, raw.get("value")))
    return changes


def _op_v21(raw: Record) -> tuple[str, Any]:
    op = raw.get("op")
    if op not in OPS:
        raise BadRequest(f"Operations must contain exactly one of {', '.join(OPS)} "
                         f"as the 'op' member, got {op!r}.")
    if "path" not in raw:
        raise BadRequest(f'Operation "{op}" requires a member named "path".')
    return op, raw["path"]


def _op_v20(raw: Record) -> tuple[str, Any]:
    found = [op for op in OPS if op in raw]
    if len(found) != 1:
        raise BadRequest(f"Operation objects must contain exactly one member named "
                         f"{', '.join(OPS)}.")
    return found[0], raw[found[0]]


def decode_pointer(pointer: Any) -> str:
    """The single top-level key a pointer names; ``BadRequest`` for anything else.

    ``/locations/...`` is let through as ``locations`` so it is refused as reserved (403).
    """
    if not isinstance(pointer, str):
        raise BadRequest("Pointer must be a string.")
    if not pointer.startswith("/"):
        raise BadRequest(f"Pointer `{pointer}` does not start with \"/\".")
    if pointer.endswith("/") or "//" in pointer:
        raise BadRequest(f"Pointer `{pointer}` contains an empty segment.")
    if _BAD_ESCAPE.search(pointer):
        raise BadRequest(f"Pointer `{pointer}` contains \"~\" not part of a recognized escape "
                         "sequence.")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    if parts[0] == "locations" and len(parts) == 2:
        return "locations"
    if len(parts) != 1:
        raise BadRequest("Invalid JSON pointer for this resource: " + pointer)
    return parts[0]


def _check_key(op: str, key: str) -> None:
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if is_reserved(key):
        raise Forbidden(f"Attribute '{key}' is reserved.")
    if op == "remove" and key in BASE_KEYS:
        raise Forbidden(f"Property {key} may not be removed.")


def _apply(new: Record, change: Change, media_type: str, ctx: RequestContext) -> None:
    key, props = change.key, new["properties"]
    exists = key in BASE_KEYS or key in props
    if change.op == "add" and exists and media_type == PATCH_V20:
        raise Conflict(f"Property {key} already present.")
    if change.op in ("replace", "remove") and not exists:
        raise Conflict(f"Property {key} does not exist.")
    if change.op == "remove":
        del props[key]
    elif key in BASE_KEYS:
        _set_base(new, key, change.value, ctx)
    else:
        props[key] = change.value


def _set_base(new: Record, key: str, value: Any, ctx: RequestContext) -> None:
    if key in _FORMAT_KEYS and new.get("status") not in _FORMAT_STATUSES:
        raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if key == "visibility":
        check_visibility_change(value, ctx)
    elif key == "owner":
        check_owner_change(new.get("owner"), value, ctx)
    elif key == "tags":
        value = normalize_tags(value)
    new[key] = value
