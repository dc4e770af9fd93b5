"""PATCH /v2/images/{id} (glance-v2-api.md 2.4) under both media types."""
from __future__ import annotations

import copy

import jsonschema
import pytest
from domain_support import ADMIN, ALICE, BOB, LATER, make_record

from cas_glance.domain.image import MAX_PROPERTIES, MAX_TAGS, to_api
from cas_glance.domain.patch import PATCH_V20, PATCH_V21, apply_patch, decode_pointer
from cas_glance.domain.schemas import image_schema
from cas_glance.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    PayloadTooLarge,
    UnsupportedMediaType,
)

BOTH = [PATCH_V21, PATCH_V20]


def op(media_type, kind, path, *value):
    """One op in the media type's own style."""
    body = {"op": kind, "path": path} if media_type == PATCH_V21 else {kind: path}
    if value:
        body["value"] = value[0]
    return body


def patch(record, media_type, *ops, ctx=ADMIN):
    before = copy.deepcopy(record)
    out = apply_patch(record, list(ops), media_type, ctx, LATER)
    assert record == before, "apply_patch mutated its input"
    return out


@pytest.fixture
def rec():
    return make_record({"name": "old", "disk_format": "raw", "container_format": "bare",
                        "foo": "bar"})


def test_glanceclient_image_update_body(rec):
    body = [{"op": "remove", "path": "/foo"},
            {"op": "add", "path": "/os_distro", "value": "ubuntu"},
            {"op": "add", "path": "/newp", "value": "1"},
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "replace", "path": "/min_disk", "value": 2}]
    out = apply_patch(rec, body, PATCH_V21, ADMIN, LATER)
    assert out["properties"] == {"os_distro": "ubuntu", "newp": "1"}
    assert out["name"] == "renamed" and out["min_disk"] == 2 and out["updated_at"] == LATER
    jsonschema.validate(to_api(out), image_schema())


@pytest.mark.parametrize("media_type", BOTH)
def test_replace_base_and_extra(rec, media_type):
    out = patch(rec, media_type, op(media_type, "replace", "/name", "new"),
                op(media_type, "replace", "/foo", "baz"))
    assert out["name"] == "new" and out["properties"]["foo"] == "baz"


@pytest.mark.parametrize("media_type", BOTH)
def test_add_new_extra_and_remove_extra(rec, media_type):
    out = patch(rec, media_type, op(media_type, "add", "/k", "v"),
                op(media_type, "remove", "/foo"))
    assert out["properties"] == {"k": "v"}


def test_v21_add_upserts_existing_keys(rec):
    out = patch(rec, PATCH_V21, op(PATCH_V21, "add", "/foo", "new"),
                op(PATCH_V21, "add", "/name", "n2"))
    assert out["properties"]["foo"] == "new" and out["name"] == "n2"


@pytest.mark.parametrize("path", ["/foo", "/name"])
def test_v20_add_of_existing_key_is_conflict(rec, path):
    with pytest.raises(Conflict):
        patch(rec, PATCH_V20, op(PATCH_V20, "add", path, "x"))


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("kind", ["remove", "replace"])
def test_remove_or_replace_of_absent_extra_is_conflict(rec, media_type, kind):
    with pytest.raises(Conflict):
        value = [] if kind == "remove" else ["x"]
        patch(rec, media_type, op(media_type, kind, "/absent", *value))


@pytest.mark.parametrize("media_type", BOTH)
def test_pointer_escapes(rec, media_type):
    out = patch(rec, media_type, op(media_type, "add", "/a~1b~0c", "v"))
    assert out["properties"]["a/b~c"] == "v"


@pytest.mark.parametrize("media_type", BOTH)
def test_tags_are_replaced_whole_and_deduplicated(rec, media_type):
    out = patch(rec, media_type, op(media_type, "replace", "/tags", ["x", "y", "x"]))
    assert out["tags"] == ["x", "y"]


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("key", ["created_at", "updated_at", "status", "checksum", "size",
                                 "virtual_size", "direct_url", "self", "file", "schema", "id",
                                 "os_hash_algo", "os_hash_value"])
def test_read_only_paths_are_forbidden(rec, media_type, key):
    for kind in ("add", "replace"):
        with pytest.raises(Forbidden):
            patch(rec, media_type, op(media_type, kind, f"/{key}", "x"))
    with pytest.raises(Forbidden):
        patch(rec, media_type, op(media_type, "remove", f"/{key}"))


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("path", ["/location", "/locations", "/deleted", "/deleted_at",
                                  "/os_glance_import_task", "/os_glance_x", "/locations/0",
                                  "/locations/-"])
def test_reserved_paths_are_forbidden(rec, media_type, path):
    with pytest.raises(Forbidden):
        patch(rec, media_type, op(media_type, "add", path, "x"))


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("key", ["name", "visibility", "protected", "os_hidden", "disk_format",
                                 "container_format", "min_disk", "min_ram", "owner", "tags"])
def test_removing_a_base_property_is_forbidden(rec, media_type, key):
    with pytest.raises(Forbidden):
        patch(rec, media_type, op(media_type, "remove", f"/{key}"))


@pytest.mark.parametrize("media_type", BOTH)
def test_non_admin_owner_change_is_forbidden(media_type):
    mine = make_record({}, ALICE)
    with pytest.raises(Forbidden):
        patch(mine, media_type, op(media_type, "replace", "/owner", "bob"), ctx=ALICE)
    same = patch(mine, media_type, op(media_type, "replace", "/owner", "alice"), ctx=ALICE)
    assert same["owner"] == "alice"


def test_admin_may_change_owner(rec):
    assert patch(rec, PATCH_V21, op(PATCH_V21, "replace", "/owner", "bob"))["owner"] == "bob"


def test_non_owner_may_not_patch():
    mine = make_record({"visibility": "public"}, ADMIN, owner="alice")
    with pytest.raises(Forbidden):
        patch(mine, PATCH_V21, op(PATCH_V21, "replace", "/name", "x"), ctx=BOB)


def test_non_admin_may_not_publicize():
    mine = make_record({}, ALICE)
    with pytest.raises(Forbidden):
        patch(mine, PATCH_V21, op(PATCH_V21, "replace", "/visibility", "public"), ctx=ALICE)
    out = patch(mine, PATCH_V21, op(PATCH_V21, "replace", "/visibility", "community"), ctx=ALICE)
    assert out["visibility"] == "community"


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("status", ["saving", "uploading", "active", "deactivated", "killed"])
@pytest.mark.parametrize("key", ["disk_format", "container_format"])
def test_format_change_after_queued_is_forbidden(media_type, status, key):
    rec = make_record({"disk_format": "raw", "container_format": "bare"}, status=status)
    with pytest.raises(Forbidden):
        value = "qcow2" if key == "disk_format" else "ovf"
        patch(rec, media_type, op(media_type, "replace", f"/{key}", value))


@pytest.mark.parametrize("status", ["queued", "importing"])
def test_format_change_while_queued_or_importing_is_allowed(status):
    rec = make_record({"disk_format": "raw"}, status=status)
    out = patch(rec, PATCH_V21, op(PATCH_V21, "replace", "/disk_format", "qcow2"))
    assert out["disk_format"] == "qcow2"


@pytest.mark.parametrize("media_type", BOTH)
@pytest.mark.parametrize("path,value", [
    ("/min_disk", -1), ("/min_ram", "1"), ("/min_disk", True), ("/name", 5),
    ("/name", "x" * 256), ("/visibility", "everyone"), ("/protected", "true"),
    ("/os_hidden", None), ("/disk_format", "tar"), ("/container_format", "zip"),
    ("/tags", "a"), ("/tags", [1]), ("/tags", ["x" * 256]), ("/extra", 1), ("/extra", None),
    ("/extra", ["a"]), ("/" + "k" * 256, "v"), ("/description", 3),
])
def test_schema_failures_are_bad_request(rec, media_type, path, value):
    with pytest.raises(BadRequest):
        patch(rec, media_type, op(media_type, "replace" if path == "/name" else "add", path, value))


@pytest.mark.parametrize("ops", [
    {}, "x", None, 3, [1], ["x"], [[]],
    [{"op": "move", "path": "/name", "value": "x"}],
    [{"op": "test", "path": "/name", "value": "x"}],
    [{"path": "/name", "value": "x"}],
    [{"op": "add", "value": "x"}],
    [{"op": "add", "path": "/k"}],
    [{"op": "replace", "path": "name", "value": "x"}],
    [{"op": "replace", "path": "/", "value": "x"}],
    [{"op": "replace", "path": "/a/b", "value": "x"}],
    [{"op": "replace", "path": "/name/", "value": "x"}],
    [{"op": "replace", "path": "//name", "value": "x"}],
    [{"op": "add", "path": "/a~2", "value": "x"}],
    [{"op": "add", "path": "/a~", "value": "x"}],
    [{"op": "add", "path": 5, "value": "x"}],
])
def test_malformed_v21_patches_are_bad_request(rec, ops):
    with pytest.raises(BadRequest):
        apply_patch(rec, ops, PATCH_V21, ADMIN, LATER)


@pytest.mark.parametrize("ops", [
    [{"op": "add", "path": "/k", "value": "v"}],
    [{"add": "/k", "replace": "/j", "value": "v"}],
    [{"move": "/k", "value": "v"}],
    [{"add": "/k"}],
])
def test_malformed_v20_patches_are_bad_request(rec, ops):
    with pytest.raises(BadRequest):
        apply_patch(rec, ops, PATCH_V20, ADMIN, LATER)


@pytest.mark.parametrize("media_type", ["application/json", "application/json-patch+json", ""])
def test_other_media_types_are_unsupported(rec, media_type):
    with pytest.raises(UnsupportedMediaType):
        apply_patch(rec, [], media_type, ADMIN, LATER)


def test_empty_patch_only_touches_updated_at(rec):
    out = patch(rec, PATCH_V21)
    assert {k: v for k, v in out.items() if k != "updated_at"} == \
        {k: v for k, v in rec.items() if k != "updated_at"}


def test_failing_op_applies_nothing(rec):
    with pytest.raises(Conflict):
        apply_patch(rec, [op(PATCH_V21, "replace", "/name", "new"),
                          op(PATCH_V21, "remove", "/absent")], PATCH_V21, ADMIN, LATER)
    assert rec["name"] == "old"


def test_ops_apply_in_order(rec):
    out = patch(rec, PATCH_V21, op(PATCH_V21, "add", "/k", "1"), op(PATCH_V21, "remove", "/k"),
                op(PATCH_V21, "add", "/k", "2"))
    assert out["properties"]["k"] == "2"


def test_more_than_128_properties_is_payload_too_large():
    rec = make_record({f"p{i}": "v" for i in range(MAX_PROPERTIES)})
    patch(rec, PATCH_V21, op(PATCH_V21, "replace", "/p0", "w"))  # at the limit: fine
    with pytest.raises(PayloadTooLarge):
        patch(rec, PATCH_V21, op(PATCH_V21, "add", "/one_more", "v"))


def test_too_many_tags_is_payload_too_large(rec):
    with pytest.raises(PayloadTooLarge):
        patch(rec, PATCH_V21, op(PATCH_V21, "replace", "/tags",
                                 [str(i) for i in range(MAX_TAGS + 1)]))


def test_dotted_sdk_keys_are_ordinary_extras(rec):
    out = patch(rec, PATCH_V21, op(PATCH_V21, "add", "/owner_specified.openstack.sha256", ""))
    assert to_api(out)["owner_specified.openstack.sha256"] == ""


def test_decode_pointer_unescapes_in_the_right_order():
    assert decode_pointer("/~01") == "~1"
    assert decode_pointer("/~10") == "/0"
