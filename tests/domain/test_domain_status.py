"""The status machine table: every (status, event) pair either moves as the table says or
raises InvalidTransition (a Conflict)."""
from __future__ import annotations

import itertools

import pytest

from cas_glance.domain.status import EVENTS, STATUSES, TRANSITIONS, transition
from cas_glance.errors import Conflict, InvalidTransition

EXPECTED = {
    ("queued", "upload"): "saving",
    ("queued", "stage"): "uploading",
    ("queued", "import_start"): "importing",
    ("queued", "location_add"): "active",
    ("queued", "delete"): "deleted",
    ("saving", "upload_done"): "active",
    ("saving", "upload_failed"): "queued",
    ("saving", "kill"): "killed",
    ("saving", "delete"): "deleted",
    ("uploading", "import_start"): "importing",
    ("uploading", "stage_revert"): "queued",
    ("uploading", "delete"): "deleted",
    ("importing", "import_done"): "active",
    ("importing", "import_failed"): "queued",
    ("importing", "delete"): "deleted",
    ("active", "deactivate"): "deactivated",
    ("active", "reactivate"): "active",
    ("active", "delayed_delete"): "pending_delete",
    ("active", "delete"): "deleted",
    ("deactivated", "reactivate"): "active",
    ("deactivated", "deactivate"): "deactivated",
    ("deactivated", "delayed_delete"): "pending_delete",
    ("deactivated", "delete"): "deleted",
    ("killed", "delete"): "deleted",
    ("pending_delete", "scrub"): "deleted",
    ("pending_delete", "restore"): "active",
}
ALL_PAIRS = list(itertools.product(STATUSES, EVENTS))


def test_table_is_exactly_the_documented_machine():
    assert TRANSITIONS == EXPECTED


def test_table_only_mentions_known_statuses_and_events():
    for (status, event), target in TRANSITIONS.items():
        assert status in STATUSES and target in STATUSES and event in EVENTS


@pytest.mark.parametrize("status,event", ALL_PAIRS, ids=[f"{s}-{e}" for s, e in ALL_PAIRS])
def test_every_status_event_pair(status, event):
    if (status, event) in EXPECTED:
        assert transition(status, event) == EXPECTED[(status, event)]
    else:
        with pytest.raises(InvalidTransition) as info:
            transition(status, event)
        assert isinstance(info.value, Conflict)
        assert (info.value.status, info.value.event) == (status, event)


def test_deleted_is_terminal():
    assert not [e for e in EVENTS if ("deleted", e) in TRANSITIONS]


def test_every_live_status_can_be_deleted():
    for status in STATUSES:
        if status not in ("deleted", "pending_delete"):
            assert transition(status, "delete") == "deleted"


def test_unknown_status_or_event_raises():
    with pytest.raises(InvalidTransition):
        transition("bogus", "delete")
    with pytest.raises(InvalidTransition):
        transition("queued", "bogus")
