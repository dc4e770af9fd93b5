"""POST /v2/images body rules (glance-v2-api.md 2.1) and the API view of a new record."""
from __future__ import annotations

import jsonschema
import pytest
from domain_support import ADMIN, ALICE, NOBODY, NOW

from cas_glance.domain.image import MAX_PROPERTIES, MAX_TAGS, new_image, to_api
from cas_glance.domain.schemas import image_schema
from cas_glance.errors import BadRequest, Forbidden, PayloadTooLarge

IMAGE_ID = "0b5c5d2e-6c1f-4a8e-9a51-3b0c7c5a1f00"


def create(body, ctx=ADMIN):
    return new_image(body, ctx, NOW, IMAGE_ID)


def test_empty_body_gives_queued_record_with_glance_defaults():
    rec = create({})
    assert rec["id"] == IMAGE_ID and rec["status"] == "queued"
    assert rec["visibility"] == "shared"
    assert rec["protected"] is False and rec["os_hidden"] is False
    assert rec["min_disk"] == 0 and rec["min_ram"] == 0 and rec["tags"] == []
    assert rec["owner"] is None  # noauth admin has no project
    assert rec["created_at"] == rec["updated_at"] == NOW
    assert rec["properties"] == {} and rec["deleted_at"] is None


def test_body_keys_land_in_base_or_properties():
    rec = create({"name": "n", "disk_format": "qcow2", "container_format": "bare",
                  "min_disk": 2, "min_ram": 512, "protected": True, "os_hidden": True,
                  "visibility": "private", "tags": ["a", "b", "a"], "os_distro": "ubuntu",
                  "owner_specified.openstack.md5": ""})
    assert rec["name"] == "n" and rec["disk_format"] == "qcow2" and rec["min_ram"] == 512
    assert rec["tags"] == ["a", "b"]
    assert rec["properties"] == {"os_distro": "ubuntu", "owner_specified.openstack.md5": ""}


def test_owner_defaults_to_callers_project():
    assert create({}, ALICE)["owner"] == "alice"


def test_input_body_is_not_mutated():
    body = {"name": "n", "tags": ["x", "x"]}
    create(body)
    assert body == {"name": "n", "tags": ["x", "x"]}


@pytest.mark.parametrize("key", [
    "self", "file", "schema", "direct_url", "stores", "status", "checksum", "size",
    "virtual_size", "os_hash_algo", "os_hash_value", "location", "locations", "deleted",
    "deleted_at", "created_at", "updated_at", "os_glance_import_task", "os_glance_anything",
])
def test_read_only_and_reserved_keys_are_forbidden(key):
    with pytest.raises(Forbidden):
        create({key: "x"})


@pytest.mark.parametrize("body", [
    {"name": 1}, {"name": "x" * 256}, {"visibility": "everyone"}, {"protected": "yes"},
    {"os_hidden": 1}, {"min_disk": -1}, {"min_ram": "1"}, {"min_disk": True},
    {"min_ram": 1.5}, {"disk_format": "tar"}, {"container_format": "zip"},
    {"tags": "a"}, {"tags": [1]}, {"tags": ["x" * 256]}, {"owner": 5},
    {"extra": 1}, {"extra": None}, {"extra": True}, {"extra": ["a"]}, {"extra": {"a": "b"}},
    {"k" * 256: "v"}, {"": "v"}, {"os_distro": 7}, {"id": "not-a-uuid"},
    {"min_disk": 2**31}, {"min_ram": 2**31},
])
def test_schema_failures_are_bad_requests(body):
    with pytest.raises(BadRequest):
        create(body)


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_non_object_body_is_bad_request(body):
    with pytest.raises(BadRequest):
        create(body)


def test_null_formats_and_name_are_allowed():
    rec = create({"name": None, "disk_format": None, "container_format": None})
    assert rec["disk_format"] is None and rec["name"] is None


def test_body_id_is_accepted_when_uuid():
    assert create({"id": IMAGE_ID})["id"] == IMAGE_ID


def test_non_admin_cannot_create_public_image():
    with pytest.raises(Forbidden):
        create({"visibility": "public"}, ALICE)


@pytest.mark.parametrize("visibility", ["private", "shared", "community"])
def test_non_admin_may_choose_other_visibilities(visibility):
    assert create({"visibility": visibility}, ALICE)["visibility"] == visibility


def test_admin_may_create_public_image_for_any_owner():
    rec = create({"visibility": "public", "owner": "bob"})
    assert rec["visibility"] == "public" and rec["owner"] == "bob"


def test_non_admin_may_name_own_project_as_owner():
    assert create({"owner": "alice"}, ALICE)["owner"] == "alice"


@pytest.mark.parametrize("owner", ["bob", None])
def test_non_admin_cannot_give_image_to_another_owner(owner):
    with pytest.raises(Forbidden):
        create({"owner": owner}, ALICE)


def test_project_less_non_admin_gets_no_owner():
    assert create({}, NOBODY)["owner"] is None


def test_too_many_tags_is_payload_too_large():
    create({"tags": [str(i) for i in range(MAX_TAGS)]})
    with pytest.raises(PayloadTooLarge):
        create({"tags": [str(i) for i in range(MAX_TAGS + 1)]})


def test_too_many_properties_is_payload_too_large():
    create({f"p{i}": "v" for i in range(MAX_PROPERTIES)})
    with pytest.raises(PayloadTooLarge):
        create({f"p{i}": "v" for i in range(MAX_PROPERTIES + 1)})


def test_to_api_shows_every_base_key_links_and_flattened_extras():
    view = to_api(create({"name": "n", "hw_disk_bus": "scsi", "a.b": "c"}))
    for key in ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
                "os_hash_algo", "os_hash_value", "size", "virtual_size", "disk_format",
                "container_format", "min_disk", "min_ram", "owner", "tags", "created_at",
                "updated_at"):
        assert key in view
    assert view["self"] == f"/v2/images/{IMAGE_ID}"
    assert view["file"] == f"/v2/images/{IMAGE_ID}/file"
    assert view["schema"] == "/v2/schemas/image"
    assert view["hw_disk_bus"] == "scsi" and view["a.b"] == "c"
    assert "properties" not in view and "deleted_at" not in view and "members" not in view


def test_to_api_hides_internal_os_glance_keys_but_shows_import_outcome():
    rec = create({})
    rec["properties"] = {"os_glance_import_task": "t", "os_glance_failed_import": "",
                         "os_glance_importing_to_stores": ""}
    view = to_api(rec)
    assert "os_glance_import_task" not in view
    assert view["os_glance_failed_import"] == "" and view["os_glance_importing_to_stores"] == ""


def test_to_api_of_new_image_validates_against_the_schema():
    rec = create({"name": "n", "disk_format": "raw", "container_format": "bare",
                  "tags": ["t"], "kernel_id": "k", "x": "y"})
    jsonschema.validate(to_api(rec), image_schema())


def test_to_api_of_default_image_validates_against_the_schema():
    jsonschema.validate(to_api(create({})), image_schema())
