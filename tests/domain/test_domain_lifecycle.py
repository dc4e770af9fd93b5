"""Status-changing mutates: upload, delete, (de)activation, stage/import, tags. Every mutate
returns a new dict and leaves its input untouched."""
from __future__ import annotations

import copy

import pytest
from domain_support import ADMIN, ALICE, LATER, NOW, make_record

from cas_glance.domain import lifecycle
from cas_glance.domain.image import (
    MAX_TAGS,
    add_tag,
    begin_upload,
    deactivate,
    finish_upload,
    mark_deleted,
    reactivate,
    remove_tag,
    revert_upload,
)
from cas_glance.errors import BadRequest, Conflict, Forbidden, Gone, NotFound, PayloadTooLarge

FORMATS = {"disk_format": "raw", "container_format": "bare"}
DATA = dict(size=10, checksum="c" * 32, os_hash_algo="sha512", os_hash_value="h" * 128)


def unchanged(fn, record, *args, **kwargs):
    """Call a mutate and assert it did not touch its input."""
    before = copy.deepcopy(record)
    result = fn(record, *args, **kwargs)
    assert record == before
    return result


def test_begin_upload_moves_queued_to_saving():
    rec = make_record(FORMATS)
    assert unchanged(begin_upload, rec)["status"] == "saving"


@pytest.mark.parametrize("status", ["saving", "uploading", "importing", "active",
                                    "deactivated", "killed", "pending_delete", "deleted"])
def test_begin_upload_outside_queued_is_conflict(status):
    with pytest.raises(Conflict):
        begin_upload(make_record(FORMATS, status=status))


@pytest.mark.parametrize("body", [{}, {"disk_format": "raw"}, {"container_format": "bare"}])
def test_begin_upload_without_both_formats_is_bad_request(body):
    with pytest.raises(BadRequest):
        begin_upload(make_record(body))


def test_finish_upload_sets_data_fields_and_activates():
    rec = begin_upload(make_record(FORMATS))
    done = unchanged(finish_upload, rec, now=LATER, **DATA)
    assert done["status"] == "active" and done["size"] == 10 and done["virtual_size"] == 10
    assert done["checksum"] == "c" * 32 and done["os_hash_algo"] == "sha512"
    assert done["os_hash_value"] == "h" * 128 and done["updated_at"] == LATER


def test_finish_upload_virtual_size_unknown_for_raw_in_an_archive():
    rec = begin_upload(make_record({"disk_format": "raw", "container_format": "ova"}))
    assert finish_upload(rec, now=LATER, **DATA)["virtual_size"] is None


def test_finish_upload_virtual_size_unknown_for_non_raw_unless_given():
    rec = begin_upload(make_record({"disk_format": "qcow2", "container_format": "bare"}))
    assert finish_upload(rec, now=LATER, **DATA)["virtual_size"] is None
    assert finish_upload(rec, now=LATER, virtual_size=99, **DATA)["virtual_size"] == 99


@pytest.mark.parametrize("status", ["deleted", "queued", "active", "pending_delete"])
def test_finish_upload_after_image_left_saving_is_gone(status):
    with pytest.raises(Gone):
        finish_upload(make_record(FORMATS, status=status), now=LATER, **DATA)


def test_revert_upload_returns_to_queued_and_clears_data():
    rec = make_record(FORMATS, status="saving", size=5, virtual_size=5, checksum="x",
                      os_hash_algo="sha512", os_hash_value="y")
    back = unchanged(revert_upload, rec, LATER)
    assert back["status"] == "queued" and back["updated_at"] == LATER
    assert all(back[k] is None for k in ("size", "virtual_size", "checksum", "os_hash_algo",
                                         "os_hash_value"))


@pytest.mark.parametrize("status", ["deleted", "queued", "active"])
def test_revert_upload_leaves_other_statuses_alone(status):
    rec = make_record(FORMATS, status=status)
    assert revert_upload(rec, LATER) == rec


def test_zero_byte_upload_is_active():
    rec = begin_upload(make_record(FORMATS))
    done = finish_upload(rec, size=0, checksum="d41d8cd98f00b204e9800998ecf8427e",
                         os_hash_algo="sha512", os_hash_value="cf83", now=LATER)
    assert done["status"] == "active" and done["size"] == 0


@pytest.mark.parametrize("status", ["queued", "saving", "uploading", "importing", "active",
                                    "deactivated", "killed"])
def test_delete_from_any_live_status(status):
    out = unchanged(mark_deleted, make_record(status=status), ADMIN, delayed=False, now=LATER)
    assert out["status"] == "deleted" and out["deleted_at"] == LATER


@pytest.mark.parametrize("status,expected", [
    ("active", "pending_delete"), ("deactivated", "pending_delete"), ("queued", "deleted"),
    ("saving", "deleted"), ("uploading", "deleted"), ("importing", "deleted"),
    ("killed", "deleted"),
])
def test_delayed_delete_keeps_only_images_with_data(status, expected):
    out = mark_deleted(make_record(status=status, size=3), ADMIN, delayed=True, now=LATER)
    assert out["status"] == expected and out["deleted_at"] == LATER


def test_delayed_delete_keeps_data_fields_for_restore():
    out = mark_deleted(make_record(status="active", size=3), ADMIN, delayed=True, now=LATER)
    assert out["size"] == 3
    restored = lifecycle.restore(out, LATER)
    assert restored["status"] == "active" and restored["deleted_at"] is None


def test_protected_delete_is_forbidden_not_conflict():
    with pytest.raises(Forbidden):
        mark_deleted(make_record({"protected": True}), ADMIN, delayed=False, now=LATER)


@pytest.mark.parametrize("status", ["deleted", "pending_delete"])
def test_delete_of_gone_image_is_not_found(status):
    with pytest.raises(NotFound):
        mark_deleted(make_record(status=status), ADMIN, delayed=False, now=LATER)


def test_delete_by_non_owner_is_forbidden_and_owner_may_delete():
    rec = make_record({}, ALICE)
    assert mark_deleted(rec, ALICE, delayed=False, now=LATER)["status"] == "deleted"


def test_scrub_finishes_pending_delete():
    assert lifecycle.scrub(make_record(status="pending_delete"), LATER)["status"] == "deleted"


def test_deactivate_and_reactivate_round_trip():
    rec = make_record(status="active")
    off = unchanged(deactivate, rec, ADMIN, LATER)
    assert off["status"] == "deactivated" and off["updated_at"] == LATER
    assert unchanged(reactivate, off, ADMIN, LATER)["status"] == "active"


def test_repeated_deactivate_and_reactivate_are_no_ops():
    off = make_record(status="deactivated")
    assert deactivate(off, ADMIN, LATER) == off
    on = make_record(status="active")
    assert reactivate(on, ADMIN, LATER) == on


@pytest.mark.parametrize("fn", [deactivate, reactivate])
def test_non_admin_may_not_deactivate_or_reactivate(fn):
    with pytest.raises(Forbidden):
        fn(make_record({}, ALICE, status="active"), ALICE, LATER)


@pytest.mark.parametrize("fn", [deactivate, reactivate])
@pytest.mark.parametrize("status", ["queued", "saving", "uploading", "importing", "killed"])
def test_wrong_state_activation_is_forbidden(fn, status):
    with pytest.raises(Forbidden):
        fn(make_record(status=status), ADMIN, LATER)


def test_stage_and_glance_direct_import_to_active():
    rec = make_record(FORMATS)
    staged = lifecycle.stage(rec, size=7, now=LATER)
    assert staged["status"] == "uploading" and staged["size"] == 7
    importing = lifecycle.begin_import(staged, "glance-direct", LATER)
    assert importing["status"] == "importing"
    done = lifecycle.finish_import(importing, now=LATER, **DATA)
    assert done["status"] == "active" and done["virtual_size"] == 10


def test_stage_outside_queued_is_conflict():
    with pytest.raises(Conflict):
        lifecycle.stage(make_record(FORMATS, status="uploading"), size=1, now=LATER)


def test_revert_stage_and_failed_import_return_to_queued():
    assert lifecycle.revert_stage(make_record(status="uploading", size=3), LATER)["size"] is None
    failed = lifecycle.fail_import(make_record(status="importing", size=3), LATER)
    assert failed["status"] == "queued" and failed["size"] is None


@pytest.mark.parametrize("method,status", [
    ("glance-direct", "queued"), ("web-download", "uploading"), ("copy-image", "queued"),
    ("web-download", "active"),
])
def test_import_in_wrong_state_is_conflict(method, status):
    with pytest.raises(Conflict):
        lifecycle.begin_import(make_record(FORMATS, status=status), method, LATER)


def test_import_needs_formats_and_known_method():
    with pytest.raises(Conflict):
        lifecycle.begin_import(make_record({}), "web-download", LATER)
    with pytest.raises(BadRequest):
        lifecycle.begin_import(make_record(FORMATS), "ftp", LATER)


def test_copy_image_keeps_active():
    rec = make_record(FORMATS, status="active")
    assert lifecycle.begin_import(rec, "copy-image", LATER)["status"] == "active"


def test_add_tag_is_idempotent_and_stamps_updated_at():
    rec = make_record()
    tagged = unchanged(add_tag, rec, "t", LATER)
    assert tagged["tags"] == ["t"] and tagged["updated_at"] == LATER
    assert add_tag(tagged, "t", NOW) == tagged


def test_tag_over_255_characters_is_bad_request():
    add_tag(make_record(), "x" * 255, LATER)
    with pytest.raises(BadRequest):
        add_tag(make_record(), "x" * 256, LATER)


def test_more_than_128_tags_is_payload_too_large():
    rec = make_record({"tags": [str(i) for i in range(MAX_TAGS)]})
    assert add_tag(rec, "0", LATER) == rec  # existing tag: still fine
    with pytest.raises(PayloadTooLarge):
        add_tag(rec, "new", LATER)


def test_remove_tag_and_absent_tag_is_not_found():
    rec = make_record({"tags": ["a", "b"]})
    assert unchanged(remove_tag, rec, "a", LATER)["tags"] == ["b"]
    with pytest.raises(NotFound):
        remove_tag(rec, "zzz", LATER)
