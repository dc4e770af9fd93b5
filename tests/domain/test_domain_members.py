"""Image members: who may share, accept, see and unshare, and what shows up where."""
from __future__ import annotations

import copy

import jsonschema
import pytest
from domain_support import ADMIN, ALICE, BOB, LATER, NOW, RequestContext, make_record

from cas_glance.domain import members as m
from cas_glance.domain.image import is_visible, to_api
from cas_glance.domain.query import parse_list_query, select
from cas_glance.domain.schemas import member_schema, members_schema
from cas_glance.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge

CAROL = RequestContext(project_id="carol", roles=("member",), is_admin=False)


@pytest.fixture
def shared():
    return make_record({"visibility": "shared"}, ALICE)


def test_owner_shares_member_accepts_and_image_gets_listed(shared):
    before = copy.deepcopy(shared)
    rec = m.add_member(shared, "bob", ALICE, NOW)
    assert shared == before
    assert rec["members"] == {"bob": "pending"}
    assert is_visible(rec, BOB)
    assert select([rec], parse_list_query([]), BOB)[0] == []
    rec = m.update_member(rec, "bob", "accepted", BOB, LATER)
    assert select([rec], parse_list_query([]), BOB)[0] == [rec]
    view = m.get_member(rec, "bob", BOB)
    assert view == {"image_id": rec["id"], "member_id": "bob", "status": "accepted",
                    "created_at": NOW, "updated_at": LATER, "schema": "/v2/schemas/member"}
    jsonschema.validate(view, member_schema())
    jsonschema.validate({"members": m.list_members(rec, ALICE), "schema": "/v2/schemas/members"},
                        members_schema())
    assert "members" not in to_api(rec) and "member_stamps" not in to_api(rec)


@pytest.mark.parametrize("visibility", ["public", "private", "community"])
def test_members_only_on_shared_images(visibility):
    rec = make_record({"visibility": visibility}, ADMIN, owner="alice")
    with pytest.raises(Forbidden):
        m.add_member(rec, "bob", ALICE, NOW)
    with pytest.raises(Forbidden):
        m.list_members(rec, ALICE)


def test_only_owner_or_admin_adds_and_removes(shared):
    with pytest.raises(Forbidden):
        m.add_member(shared, "carol", BOB, NOW)
    rec = m.add_member(shared, "bob", ADMIN, NOW)
    with pytest.raises(Forbidden):
        m.remove_member(rec, "bob", BOB, NOW)
    assert m.remove_member(rec, "bob", ALICE, NOW)["members"] == {}


def test_duplicate_member_is_conflict(shared):
    rec = m.add_member(shared, "bob", ALICE, NOW)
    with pytest.raises(Conflict):
        m.add_member(rec, "bob", ALICE, NOW)


@pytest.mark.parametrize("member", ["", 5, None, "x" * 256])
def test_bad_member_id_is_bad_request(shared, member):
    with pytest.raises(BadRequest):
        m.add_member(shared, member, ALICE, NOW)


def test_member_quota(shared):
    rec = shared
    for i in range(m.MAX_MEMBERS):
        rec = m.add_member(rec, f"p{i}", ALICE, NOW)
    with pytest.raises(PayloadTooLarge):
        m.add_member(rec, "one-more", ALICE, NOW)


def test_only_the_member_changes_status(shared):
    rec = m.add_member(shared, "bob", ALICE, NOW)
    with pytest.raises(Forbidden):
        m.update_member(rec, "bob", "accepted", ALICE, NOW)
    with pytest.raises(Forbidden):
        m.update_member(rec, "bob", "accepted", CAROL, NOW)
    assert m.update_member(rec, "bob", "rejected", ADMIN, NOW)["members"]["bob"] == "rejected"


@pytest.mark.parametrize("status", ["maybe", None, 1])
def test_bad_status_is_bad_request(shared, status):
    rec = m.add_member(shared, "bob", ALICE, NOW)
    with pytest.raises(BadRequest):
        m.update_member(rec, "bob", status, BOB, NOW)


def test_absent_member_is_not_found(shared):
    with pytest.raises(NotFound):
        m.update_member(shared, "bob", "accepted", BOB, NOW)
    with pytest.raises(NotFound):
        m.remove_member(shared, "bob", ALICE, NOW)
    with pytest.raises(NotFound):
        m.get_member(shared, "bob", ALICE)


def test_members_see_only_themselves(shared):
    rec = m.add_member(m.add_member(shared, "bob", ALICE, NOW), "carol", ALICE, NOW)
    assert [v["member_id"] for v in m.list_members(rec, ALICE)] == ["bob", "carol"]
    assert [v["member_id"] for v in m.list_members(rec, BOB)] == ["bob"]
    with pytest.raises(NotFound):
        m.get_member(rec, "carol", BOB)
