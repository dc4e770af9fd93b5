"""Status-changing mutates: upload, delete, deactivate/reactivate, stage and import.

Each is a pure ``record -> new record`` function the index runs inside one write transaction,
so the status check and the write it guards are atomic. Invariants: the input is never
mutated; every status change goes through ``status.transition``; data fields (size, hashes,
virtual_size) are set only on the way to ``active`` and cleared whenever the image returns to
``queued``. Errors follow Glance: wrong state for upload/stage is 409, for (de/re)activation
403; a protected delete is 403; an upload whose image left ``saving`` is 410.
"""
from __future__ import annotations

from cas_glance.domain.access import ensure_can_modify
from cas_glance.domain.context import RequestContext
from cas_glance.domain.status import (
    ACTIVE,
    DATA_STATUSES,
    GONE_STATUSES,
    QUEUED,
    SAVING,
    transition,
)
from cas_glance.domain.types import Record
from cas_glance.errors import BadRequest, Conflict, Forbidden, Gone, InvalidTransition, NotFound

_DATA_FIELDS = ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value")


def _cleared(record: Record) -> Record:
    return {**record, **{key: None for key in _DATA_FIELDS}}


def _plain_virtual_size(record: Record, size: int) -> int | None:
    """A bare raw or iso image's virtual size is its size; otherwise unknown here."""
    plain = record.get("disk_format") in ("raw", "iso")
    return size if plain and record.get("container_format") == "bare" else None


def require_formats(record: Record) -> None:
    """Leaving queued/uploading toward data needs both formats: ``BadRequest`` otherwise."""
    if not record.get("disk_format") or not record.get("container_format"):
        raise BadRequest("Properties disk_format and container_format must be set prior to "
                         "saving data.")


def begin_upload(record: Record) -> Record:
    """queued -> saving for PUT file: ``Conflict`` unless queued, ``BadRequest`` without formats."""
    if record.get("status") != QUEUED:
        raise Conflict(f"Image status must be 'queued' to upload data, not "
                       f"'{record.get('status')}'.")
    require_formats(record)
    return {**record, "status": transition(QUEUED, "upload")}


def finish_upload(record: Record, *, size: int, checksum: str, os_hash_algo: str,
                  os_hash_value: str, now: str, virtual_size: int | None = None) -> Record:
    """saving -> active with the data's size and hashes; ``Gone`` if the image left ``saving``
    (deleted mid-upload). ``virtual_size`` (see formats.virtual_size) defaults to ``size``
    for a bare raw or iso image, else None (unknown)."""
    if record.get("status") != SAVING:
        raise Gone("The image was deleted or changed while its data was being uploaded.")
    return _with_data(record, transition(SAVING, "upload_done"), size=size, checksum=checksum,
                      os_hash_algo=os_hash_algo, os_hash_value=os_hash_value, now=now,
                      virtual_size=virtual_size)


def _with_data(record: Record, status: str, *, size: int, checksum: str, os_hash_algo: str,
               os_hash_value: str, now: str, virtual_size: int | None) -> Record:
    """The record in `status` carrying its data's size and hashes (upload or import done)."""
    if virtual_size is None:
        virtual_size = _plain_virtual_size(record, size)
    return {
        **record, "status": status, "size": size, "virtual_size": virtual_size,
        "checksum": checksum, "os_hash_algo": os_hash_algo, "os_hash_value": os_hash_value,
        "updated_at": now,
    }


def revert_upload(record: Record, now: str) -> Record:
    """saving -> queued with the data fields cleared, so the upload can be retried; any other
    status (deleted meanwhile, already reverted) is returned unchanged."""
    if record.get("status") != SAVING:
        return record
    return {**_cleared(record), "status": transition(SAVING, "upload_failed"), "updated_at": now}


def mark_deleted(record: Record, ctx: RequestContext, *, delayed: bool, now: str) -> Record:
    """DELETE: ``Forbidden`` for a caller who is neither admin nor owner, or when protected;
    ``NotFound`` when already gone. With ``delayed`` and data present (active/deactivated) the
    image becomes ``pending_delete`` and keeps its data fields for a restore; otherwise
    ``deleted``. Sets ``deleted_at``."""
    status = record.get("status")
    if status in GONE_STATUSES:
        raise NotFound(f"Image {record.get('id')} not found.")
    ensure_can_modify(record, ctx)
    if record.get("protected"):
        raise Forbidden(f"Image {record.get('id')} is protected and cannot be deleted.")
    event = "delayed_delete" if delayed and status in DATA_STATUSES else "delete"
    new_status = transition(str(status), event)
    return {**record, "status": new_status, "deleted_at": now, "updated_at": now}


def scrub(record: Record, now: str) -> Record:
    """pending_delete -> deleted, once the restore window has passed."""
    return {**record, "status": transition(str(record.get("status")), "scrub"), "updated_at": now}


def restore(record: Record, now: str) -> Record:
    """pending_delete -> active (``glance-scrubber --restore``); clears ``deleted_at``."""
    new_status = transition(str(record.get("status")), "restore")
    return {**record, "status": new_status, "deleted_at": None, "updated_at": now}


def _admin_action(record: Record, ctx: RequestContext, event: str, now: str) -> Record:
    if not ctx.is_admin:
        raise Forbidden(f"You are not permitted to {event} this image.")
    try:
        new_status = transition(str(record.get("status")), event)
    except InvalidTransition:
        raise Forbidden(f"Not allowed to {event} an image in status "
                        f"'{record.get('status')}'.") from None
    if new_status == record.get("status"):
        return record
    return {**record, "status": new_status, "updated_at": now}


def deactivate(record: Record, ctx: RequestContext, now: str) -> Record:
    """active -> deactivated (admin only; a repeat is a no-op; other states 403)."""
    return _admin_action(record, ctx, "deactivate", now)


def reactivate(record: Record, ctx: RequestContext, now: str) -> Record:
    """deactivated -> active (admin only; a repeat is a no-op; other states 403)."""
    return _admin_action(record, ctx, "reactivate", now)


def stage(record: Record, *, size: int, now: str) -> Record:
    """PUT stage finished: queued -> uploading with ``size`` set; ``Conflict`` unless queued."""
    if record.get("status") != QUEUED:
        raise Conflict(f"Image status must be 'queued' to stage data, not "
                       f"'{record.get('status')}'.")
    return {**record, "status": transition(QUEUED, "stage"), "size": size, "updated_at": now}


def revert_stage(record: Record, now: str) -> Record:
    """uploading -> queued (staging failed or its data was discarded); else unchanged."""
    if record.get("status") != "uploading":
        return record
    return {**_cleared(record), "status": transition("uploading", "stage_revert"),
            "updated_at": now}


IMPORT_SOURCE = {"glance-direct": "uploading", "web-download": QUEUED, "copy-image": ACTIVE}


def begin_import(record: Record, method: str, now: str) -> Record:
    """POST import: glance-direct needs ``uploading``, web-download ``queued`` (-> importing);
    copy-image needs ``active`` and keeps it. ``BadRequest`` for an unknown method,
    ``Conflict`` for a wrong state, missing formats, or a held import lock."""
    if method not in IMPORT_SOURCE:
        raise BadRequest(f"Import method '{method}' is not supported.")
    if record.get("status") != IMPORT_SOURCE[method]:
        raise Conflict(f"Image status '{record.get('status')}' does not allow import "
                       f"method '{method}'.")
    if not record.get("disk_format") or not record.get("container_format"):
        raise Conflict("Properties disk_format and container_format must be set prior to import.")
    if method == "copy-image":
        return record
    return {**record, "status": transition(record["status"], "import_start"), "updated_at": now}


def finish_import(record: Record, *, size: int, checksum: str, os_hash_algo: str,
                  os_hash_value: str, now: str, virtual_size: int | None = None) -> Record:
    """importing -> active with the imported data's fields; ``Gone`` if it left importing."""
    if record.get("status") != "importing":
        raise Gone("The image was deleted or changed while it was being imported.")
    return _with_data(record, transition("importing", "import_done"), size=size,
                      checksum=checksum, os_hash_algo=os_hash_algo, os_hash_value=os_hash_value,
                      now=now, virtual_size=virtual_size)


def fail_import(record: Record, now: str) -> Record:
    """importing -> queued with data fields cleared; any other status returned unchanged."""
    if record.get("status") != "importing":
        return record
    return {**_cleared(record), "status": transition("importing", "import_failed"),
            "updated_at": now}


__all__ = [
    "begin_upload", "finish_upload", "revert_upload", "mark_deleted", "scrub", "restore",
    "deactivate", "reactivate", "stage", "revert_stage", "begin_import", "finish_import",
    "fail_import", "require_formats",
]
