"""Who sees, downloads and modifies an image (show rules; list rules are in the query tests)."""
from __future__ import annotations

import pytest
from domain_support import ADMIN, ALICE, BOB, LATER, NOBODY, make_record

from cas_glance.domain.image import can_download, ensure_can_modify, is_visible, mark_deleted
from cas_glance.errors import Forbidden


def image(visibility, owner="alice", **fields):
    return make_record({"visibility": visibility, "owner": owner}, **fields)


@pytest.mark.parametrize("visibility", ["public", "private", "shared", "community"])
def test_admin_sees_everything(visibility):
    assert is_visible(image(visibility), ADMIN)


@pytest.mark.parametrize("visibility", ["public", "private", "shared", "community"])
def test_owner_sees_own_images(visibility):
    assert is_visible(image(visibility), ALICE)


@pytest.mark.parametrize("visibility,seen", [
    ("public", True), ("community", True), ("private", False), ("shared", False),
])
def test_other_project_sees_public_and_community_only(visibility, seen):
    assert is_visible(image(visibility), BOB) is seen


@pytest.mark.parametrize("member_status", ["pending", "accepted", "rejected"])
def test_member_sees_shared_image_in_any_member_status(member_status):
    assert is_visible(image("shared", members={"bob": member_status}), BOB)


def test_membership_of_a_private_image_grants_nothing():
    assert not is_visible(image("private", members={"bob": "accepted"}), BOB)


def test_ownerless_image_is_visible_to_everyone():
    assert is_visible(image("private", owner=None), BOB)


def test_project_less_caller_sees_public_and_community():
    assert is_visible(image("public"), NOBODY) and is_visible(image("community"), NOBODY)
    assert not is_visible(image("private"), NOBODY)


@pytest.mark.parametrize("status", ["deleted", "pending_delete"])
def test_gone_images_are_visible_to_nobody(status):
    assert not is_visible(image("public", status=status), ADMIN)


@pytest.mark.parametrize("status", ["killed", "queued", "deactivated"])
def test_other_statuses_stay_visible(status):
    assert is_visible(image("public", status=status), BOB)


def test_deactivated_download_is_forbidden_for_non_admin_only():
    rec = image("public", status="deactivated")
    can_download(rec, ADMIN)
    with pytest.raises(Forbidden):
        can_download(rec, ALICE)
    can_download(image("public", status="active"), BOB)


def test_only_owner_or_admin_may_modify():
    rec = image("public")
    ensure_can_modify(rec, ADMIN)
    ensure_can_modify(rec, ALICE)
    with pytest.raises(Forbidden):
        ensure_can_modify(rec, BOB)
    with pytest.raises(Forbidden):
        ensure_can_modify(image("public", owner=None), NOBODY)


def test_non_owner_delete_is_forbidden():
    with pytest.raises(Forbidden):
        mark_deleted(image("public"), BOB, delayed=False, now=LATER)
