"""JSON schemas served at /v2/schemas/*, and the one validator every domain module uses.

Invariant: the schema is the single source of truth for value shapes. ``new_image`` and
``apply_patch`` validate through ``check_value``/``check_image``, and ``to_api`` only emits what
they accept, so every response validates against ``image_schema()`` (glanceclient checks it).
Operator-defined extras carry ``"is_base": false`` and are plain strings, like any extra.
The validator understands only the keywords these schemas use.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from cas_glance.errors import BadRequest

#: A JSON schema document (or fragment).
Schema = dict[str, Any]

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
STATUS_ENUM = [
    "queued", "saving", "active", "killed", "deleted", "uploading", "importing",
    "pending_delete", "deactivated",
]
VISIBILITY_ENUM = ["community", "public", "private", "shared"]
DISK_FORMATS = (
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
)
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
MAX_KEY_LENGTH = 255
MAX_DB_INT = 2**31 - 1  # Glance stores min_disk/min_ram as 32-bit integers

#: Well-known operator properties (Glance's schema-image.json set plus common hw_* keys).
OPERATOR_EXTRAS: dict[str, str] = {
    "kernel_id": "ID of an image stored in Glance used as the kernel when booting an AMI image.",
    "ramdisk_id": "ID of an image stored in Glance used as the ramdisk when booting an AMI image.",
    "instance_uuid": "Metadata which can be used to record which instance this image is for.",
    "architecture": "Operating system architecture as specified in "
                    "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
    "os_distro": "Common name of the operating system distribution (e.g. ubuntu, fedora).",
    "os_version": "Operating system version as specified by the distributor.",
    "description": "A human-readable string describing this image.",
    "cim_pasd_instanceid": "Metadata used by the OVF import of the image.",
    "hw_disk_bus": "Disk bus the guest sees (virtio, scsi, ide, ...).",
    "hw_scsi_model": "SCSI controller model (e.g. virtio-scsi).",
    "hw_vif_model": "Virtual network interface model (e.g. virtio, e1000).",
    "hw_machine_type": "Machine type the hypervisor emulates (e.g. q35).",
    "hw_firmware_type": "Firmware the guest boots with (bios or uefi).",
    "hw_qemu_guest_agent": "Whether the QEMU guest agent runs in the guest (yes or no).",
    "hw_rng_model": "Random number generator device model.",
    "hw_video_model": "Video device model.",
    "hypervisor_type": "Hypervisor type the image is built for.",
    "vm_mode": "Virtual machine mode (hvm, xen, exe, ...).",
    "os_type": "Operating system type (linux, windows).",
    "os_admin_user": "Name of the administrative user in the guest.",
    "img_config_drive": "Whether a config drive is required (optional or mandatory).",
}


def _nullable(kind: str, **extra: Any) -> Schema:
    return {"type": ["null", kind], **extra}


def _base_properties() -> dict[str, Schema]:
    ro = {"readOnly": True}
    return {
        "id": {"type": "string", "pattern": UUID_PATTERN,
               "description": "An identifier for the image"},
        "name": _nullable("string", maxLength=255, description="Descriptive name for the image"),
        "status": {"type": "string", "enum": STATUS_ENUM, **ro,
                   "description": "Status of the image"},
        "visibility": {"type": "string", "enum": VISIBILITY_ENUM,
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
                      "description": "If true, image will not appear in default image list."},
        "checksum": _nullable("string", maxLength=32, **ro,
                              description="md5 hash of image contents."),
        "os_hash_algo": _nullable("string", maxLength=64, **ro,
                                  description="Algorithm used to compute os_hash_value"),
        "os_hash_value": _nullable("string", maxLength=128, **ro,
                                   description="Hexdigest of the image contents"),
        "owner": _nullable("string", maxLength=255, description="Owner of the image"),
        "size": _nullable("integer", **ro, description="Size of image file in bytes"),
        "virtual_size": _nullable("integer", **ro, description="Virtual size of image in bytes"),
        "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                             "description": "Format of the container"},
        "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                        "description": "Format of the disk"},
        "created_at": {"type": "string", **ro,
                       "description": "Date and time of image registration"},
        "updated_at": {"type": "string", **ro,
                       "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "description": "List of strings related to the image"},
        "direct_url": {"type": "string", **ro,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer", "minimum": 0,
                    "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "minimum": 0,
                     "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", **ro, "description": "An image self url"},
        "file": {"type": "string", **ro, "description": "An image file url"},
        "stores": {"type": "string", **ro, "description": "Store in which image data resides."},
        "schema": {"type": "string", **ro, "description": "An image schema url"},
    }


def _operator_properties() -> dict[str, Schema]:
    return {key: {"type": "string", "is_base": False, "description": text}
            for key, text in OPERATOR_EXTRAS.items()}


_IMAGE_PROPERTIES = {**_base_properties(), **_operator_properties()}


def image_schema() -> Schema:
    """The schema of one image, as served at /v2/schemas/image (a fresh copy each call)."""
    return {
        "name": "image",
        "properties": copy.deepcopy(_IMAGE_PROPERTIES),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _collection(name: str, item: Schema) -> Schema:
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> Schema:
    """The image list schema (/v2/schemas/images)."""
    return _collection("images", image_schema())


def member_schema() -> Schema:
    """One image membership (/v2/schemas/member)."""
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string",
                           "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification"},
            "image_id": {"type": "string", "pattern": UUID_PATTERN,
                         "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member"},
            "schema": {"type": "string", "readOnly": True},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
        },
    }


def members_schema() -> Schema:
    """The membership list (/v2/schemas/members)."""
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
    }


def task_schema() -> Schema:
    """One task (/v2/schemas/task)."""
    ro = {"readOnly": True}
    return {
        "name": "task",
        "properties": {
            "id": {"type": "string", "pattern": UUID_PATTERN,
                   "description": "An identifier for the task"},
            "type": {"type": "string", "enum": ["import", "api_image_import", "location_import"],
                     "description": "The type of task represented by this content"},
            "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"],
                       **ro, "description": "The current status of this task"},
            "input": {"type": ["null", "object"], "description": "The parameters for the task"},
            "result": {"type": ["null", "object"], "description": "The result of the task"},
            "owner": {"type": ["null", "string"], **ro, "description": "Owner of the task"},
            "message": {"type": "string", **ro,
                        "description": "Human-readable informative message"},
            "image_id": {"type": "string", **ro, "description": "Image associated with the task"},
            "request_id": {"type": "string", **ro, "description": "Request that created the task"},
            "user_id": {"type": "string", **ro, "description": "User that created the task"},
            "expires_at": {"type": ["null", "string"], **ro,
                           "description": "Time after which the task is deleted"},
            "created_at": {"type": "string", **ro, "description": "Date and time of task creation"},
            "updated_at": {"type": "string", **ro,
                           "description": "Date and time of last modification"},
            "self": {"type": "string", **ro},
            "schema": {"type": "string", **ro},
        },
        "required": ["type", "input"],
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
    }


def tasks_schema() -> Schema:
    """The task list (/v2/schemas/tasks)."""
    return _collection("tasks", task_schema())


# ---- validation ---------------------------------------------------------------------------

_TYPES: dict[str, Any] = {
    "string": str, "boolean": bool, "array": list, "object": dict, "null": type(None),
}
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def schema_errors(value: Any, schema: Schema, where: str = "") -> list[str]:
    """Every way ``value`` fails ``schema`` (the subset of JSON Schema used here); [] if valid."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, k) for k in kinds):
            return [f"{where or 'value'}: {value!r} is not of type {' or '.join(kinds)}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where or 'value'}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        errors += _string_errors(value, schema, where)
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        errors.append(f"{where or 'value'}: {value!r} is less than the minimum {schema['minimum']}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}/{i}")
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        errors += _object_errors(value, schema, where)
    return errors


def _string_errors(value: str, schema: Schema, where: str) -> list[str]:
    errors = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where or 'value'}: {value!r} is too long")
    pattern = schema.get("pattern")
    if pattern is not None:
        compiled = _PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern))
        if not compiled.search(value):
            errors.append(f"{where or 'value'}: {value!r} does not match {pattern!r}")
    return errors


def _object_errors(value: dict[str, Any], schema: Schema, where: str) -> list[str]:
    errors = []
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", {})
    for key in schema.get("required", ()):
        if key not in value:
            errors.append(f"{where}/{key}: is a required property")
    for key, item in value.items():
        if key in props:
            errors += schema_errors(item, props[key], f"{where}/{key}")
        elif extra is False:
            errors.append(f"{where}/{key}: additional property not allowed")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{where}/{key}")
    return errors


def check_value(key: str, value: Any) -> None:
    """Validate one image attribute as create/PATCH would; raise ``BadRequest`` on a mismatch.

    Base keys use their own schema (plus Glance's 32-bit bound on ``min_disk``/``min_ram``);
    any other key is an extra property whose name is 1..255 characters and whose value is a
    string.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Property names must be 1 to {MAX_KEY_LENGTH} characters long: "
                         f"{key[:40]!r}")
    prop = _IMAGE_PROPERTIES.get(key, {"type": "string"})
    errors = schema_errors(value, prop, key)
    if errors:
        raise BadRequest(f"Provided object does not match schema 'image': {errors[0]}")
    if key in ("min_disk", "min_ram") and value > MAX_DB_INT:
        raise BadRequest(f"'{key}' value must be <= {MAX_DB_INT}.")


def check_image(view: dict[str, Any]) -> list[str]:
    """Every way an API image view fails the image schema (used by tests and debug checks)."""
    return schema_errors(view, image_schema())
