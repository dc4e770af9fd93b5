"""The served schemas, and the promise that every image view validates against them
(glanceclient validates responses with warlock/jsonschema)."""
from __future__ import annotations

import jsonschema
import pytest
from domain_support import ADMIN, LATER, NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cas_glance.domain import schemas
from cas_glance.domain.image import BASE_KEYS, is_reserved, new_image, to_api
from cas_glance.domain.patch import PATCH_V21, apply_patch
from cas_glance.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge

IMAGE_ID = "6f1b4f0e-2c4b-4d57-8f3e-0a1b2c3d4e5f"


@pytest.mark.parametrize("build", [schemas.image_schema, schemas.images_schema,
                                   schemas.member_schema, schemas.members_schema,
                                   schemas.task_schema, schemas.tasks_schema])
def test_schemas_are_valid_draft4_documents(build):
    jsonschema.Draft4Validator.check_schema(build())


def test_image_schema_shape():
    s = schemas.image_schema()
    assert s["name"] == "image"
    assert s["additionalProperties"] == {"type": "string"}
    assert s["links"] == [{"rel": "self", "href": "{self}"},
                          {"rel": "enclosure", "href": "{file}"},
                          {"rel": "describedby", "href": "{schema}"}]
    props = s["properties"]
    assert set(BASE_KEYS) <= set(props)
    assert None in props["disk_format"]["enum"] and None in props["container_format"]["enum"]
    assert "ploop" in props["disk_format"]["enum"] and "docker" in props["container_format"]["enum"]
    assert props["id"]["pattern"] == schemas.UUID_PATTERN
    for key in ("status", "checksum", "size", "virtual_size", "created_at", "updated_at",
                "os_hash_algo", "os_hash_value", "self", "file", "schema", "direct_url"):
        assert props[key]["readOnly"] is True, key
    for key in ("os_distro", "os_version", "description", "kernel_id", "ramdisk_id",
                "architecture", "instance_uuid", "hw_disk_bus"):
        assert props[key]["is_base"] is False and props[key]["type"] == "string"
    assert props["visibility"]["enum"] == ["community", "public", "private", "shared"]


def test_schema_calls_return_independent_copies():
    s = schemas.image_schema()
    s["properties"]["name"]["maxLength"] = 1
    assert schemas.image_schema()["properties"]["name"]["maxLength"] == 255


def test_images_schema_wraps_image_schema():
    s = schemas.images_schema()
    assert s["properties"]["images"]["items"] == schemas.image_schema()
    assert {"first", "next", "schema"} <= set(s["properties"])


def test_member_and_task_documents_validate():
    member = {"image_id": IMAGE_ID, "member_id": "bob", "status": "pending",
              "created_at": NOW, "updated_at": NOW, "schema": "/v2/schemas/member"}
    jsonschema.validate(member, schemas.member_schema())
    jsonschema.validate({"members": [member], "schema": "/v2/schemas/members"},
                        schemas.members_schema())
    task = {"id": IMAGE_ID, "type": "api_image_import", "status": "processing",
            "input": {}, "result": None, "owner": None, "message": "", "created_at": NOW,
            "updated_at": NOW, "expires_at": None, "self": f"/v2/tasks/{IMAGE_ID}",
            "schema": "/v2/schemas/task"}
    jsonschema.validate(task, schemas.task_schema())
    jsonschema.validate({"tasks": [task], "schema": "/v2/schemas/tasks",
                         "first": "/v2/tasks"}, schemas.tasks_schema())


def test_image_view_with_data_validates():
    rec = new_image({"name": "n", "disk_format": "qcow2", "container_format": "bare"},
                    ADMIN, NOW, IMAGE_ID)
    rec.update(status="active", size=10, virtual_size=20, checksum="c" * 32,
               os_hash_algo="sha512", os_hash_value="f" * 128)
    jsonschema.validate(to_api(rec), schemas.image_schema())


# ---- the small validator agrees with jsonschema -----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
    | st.text(max_size=5) | st.sampled_from(["raw", "bare", "public", "x" * 256, IMAGE_ID]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6,
)
image_like = st.dictionaries(
    st.sampled_from([*schemas.image_schema()["properties"], "extra", "x.y"]), json_values,
    max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(image_like)
def test_validator_agrees_with_jsonschema(doc):
    expected = jsonschema.Draft4Validator(schemas.image_schema()).is_valid(doc)
    assert (schemas.check_image(doc) == []) is expected


# ---- random valid patches keep the view valid --------------------------------------------

printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
extra_keys = st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="._-/~"),
                     min_size=1, max_size=12).filter(
    lambda k: not is_reserved(k) and k not in schemas.image_schema()["properties"])


def _escape(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


base_ops = st.one_of(
    st.builds(lambda v: ("replace", "/name", v), st.none() | st.text(max_size=255)),
    st.builds(lambda v: ("replace", "/visibility", v),
              st.sampled_from(["public", "private", "shared", "community"])),
    st.builds(lambda v: ("replace", "/protected", v), st.booleans()),
    st.builds(lambda v: ("replace", "/os_hidden", v), st.booleans()),
    st.builds(lambda v: ("replace", "/min_disk", v), st.integers(0, 2**31 - 1)),
    st.builds(lambda v: ("replace", "/min_ram", v), st.integers(0, 2**31 - 1)),
    st.builds(lambda v: ("replace", "/disk_format", v),
              st.sampled_from([None, *schemas.DISK_FORMATS])),
    st.builds(lambda v: ("replace", "/container_format", v),
              st.sampled_from([None, *schemas.CONTAINER_FORMATS])),
    st.builds(lambda v: ("replace", "/tags", v), st.lists(st.text(max_size=30), max_size=8)),
    st.builds(lambda v: ("replace", "/owner", v), st.none() | st.text(max_size=30)),
    st.builds(lambda k, v: ("add", _escape(k), v), extra_keys, printable),
    st.builds(lambda k, v: ("add", _escape(k), v),
              st.sampled_from(sorted(schemas.OPERATOR_EXTRAS)), printable),
    st.builds(lambda k: ("remove", _escape(k), None), extra_keys),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(base_ops, max_size=6), max_size=4))
def test_random_valid_patches_keep_to_api_valid(batches):
    record = new_image({"name": "start", "k": "v"}, ADMIN, NOW, IMAGE_ID)
    validator = jsonschema.Draft4Validator(schemas.image_schema())
    for batch in batches:
        ops = [{"op": op, "path": path, **({} if op == "remove" else {"value": value})}
               for op, path, value in batch]
        try:
            record = apply_patch(record, ops, PATCH_V21, ADMIN, LATER)
        except (Conflict, PayloadTooLarge):
            continue  # removing an absent extra; limits
        view = to_api(record)
        errors = sorted(e.message for e in validator.iter_errors(view))
        assert errors == [], errors
        assert all(isinstance(record["properties"][k], str) for k in record["properties"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "min_disk", "tags", "visibility", "disk_format",
                                        "extra", "description", "protected"]), json_values,
                       max_size=5))
def test_any_accepted_create_body_gives_a_valid_view(body):
    try:
        record = new_image(body, ADMIN, NOW, IMAGE_ID)
    except (BadRequest, Forbidden, PayloadTooLarge):
        return
    jsonschema.validate(to_api(record), schemas.image_schema())
