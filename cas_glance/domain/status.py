"""The Glance v2 image status machine as one pure table.

``TRANSITIONS[(status, event)]`` is the new status; a pair absent from the table is not a legal
move and ``transition`` raises ``InvalidTransition``. Self-loops are listed where Glance treats a
repeat as a no-op (deactivate/reactivate). Preconditions that are not about status (formats set,
admin, protected) live in image.py; this table only knows statuses and events.
"""
from __future__ import annotations

from cas_glance.errors import InvalidTransition

QUEUED = "queued"
SAVING = "saving"
UPLOADING = "uploading"
IMPORTING = "importing"
ACTIVE = "active"
DEACTIVATED = "deactivated"
KILLED = "killed"
PENDING_DELETE = "pending_delete"
DELETED = "deleted"

STATUSES: tuple[str, ...] = (
    QUEUED, SAVING, UPLOADING, IMPORTING, ACTIVE, DEACTIVATED, KILLED, PENDING_DELETE, DELETED,
)

EVENTS: tuple[str, ...] = (
    "upload",          # PUT file begins: queued -> saving
    "upload_done",     # data stored and hashed: saving -> active
    "upload_failed",   # any upload failure (or crash recovery): saving -> queued
    "kill",            # legacy failure state: saving -> killed
    "stage",           # PUT stage: queued -> uploading
    "stage_revert",    # staging failed or was discarded: uploading -> queued
    "import_start",    # POST import (web-download from queued, glance-direct from uploading)
    "import_done",     # import task success: importing -> active
    "import_failed",   # import task failure: importing -> queued
    "location_add",    # v2.17 location add on a queued image: queued -> active
    "deactivate",      # admin action; a repeat is a no-op
    "reactivate",      # admin action; a repeat is a no-op
    "delete",          # DELETE without a restore window (or with no data to keep)
    "delayed_delete",  # DELETE with delayed_delete and data present
    "scrub",           # the scrubber/GC finished a pending delete
    "restore",         # glance-scrubber --restore
)

TRANSITIONS: dict[tuple[str, str], str] = {
    (QUEUED, "upload"): SAVING,
    (QUEUED, "stage"): UPLOADING,
    (QUEUED, "import_start"): IMPORTING,
    (QUEUED, "location_add"): ACTIVE,
    (QUEUED, "delete"): DELETED,
    (SAVING, "upload_done"): ACTIVE,
    (SAVING, "upload_failed"): QUEUED,
    (SAVING, "kill"): KILLED,
    (SAVING, "delete"): DELETED,
    (UPLOADING, "import_start"): IMPORTING,
    (UPLOADING, "stage_revert"): QUEUED,
    (UPLOADING, "delete"): DELETED,
    (IMPORTING, "import_done"): ACTIVE,
    (IMPORTING, "import_failed"): QUEUED,
    (IMPORTING, "delete"): DELETED,
    (ACTIVE, "deactivate"): DEACTIVATED,
    (ACTIVE, "reactivate"): ACTIVE,
    (ACTIVE, "delayed_delete"): PENDING_DELETE,
    (ACTIVE, "delete"): DELETED,
    (DEACTIVATED, "reactivate"): ACTIVE,
    (DEACTIVATED, "deactivate"): DEACTIVATED,
    (DEACTIVATED, "delayed_delete"): PENDING_DELETE,
    (DEACTIVATED, "delete"): DELETED,
    (KILLED, "delete"): DELETED,
    (PENDING_DELETE, "scrub"): DELETED,
    (PENDING_DELETE, "restore"): ACTIVE,
}

#: Statuses an image never leaves the API in: listed nowhere, 404 on show.
GONE_STATUSES: frozenset[str] = frozenset({PENDING_DELETE, DELETED})
#: Statuses whose image holds data (a delayed delete keeps it for a restore window).
DATA_STATUSES: frozenset[str] = frozenset({ACTIVE, DEACTIVATED})


def transition(status: str, event: str) -> str:
    """The status after ``event`` happens in ``status``; raises ``InvalidTransition`` otherwise."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None
