"""Which image keys exist and who may touch them: the vocabulary shared by create, PATCH,
the API view and the list filters.

Invariants: ``BASE_KEYS`` are stored at the top of a record and always shown; every other
client key is an *extra* kept in ``record["properties"]`` as a string; ``READ_ONLY`` and
``RESERVED`` keys (and anything ``os_glance*``) are never settable by a client.
"""
from __future__ import annotations

from cas_glance.domain.schemas import CONTAINER_FORMATS, DISK_FORMATS

__all__ = [
    "BASE_KEYS", "READ_ONLY", "RESERVED", "CREATE_FORBIDDEN", "DISK_FORMATS", "CONTAINER_FORMATS",
    "MAX_PROPERTIES", "MAX_TAGS", "MAX_TAG_LENGTH", "RESERVED_PREFIX", "PUBLIC_GLANCE_KEYS",
    "INTERNAL_KEYS", "is_reserved",
]

BASE_KEYS: tuple[str, ...] = (
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "disk_format", "container_format", "min_disk",
    "min_ram", "owner", "tags", "created_at", "updated_at",
)

#: Keys a PATCH may never touch (403 "read-only").
READ_ONLY: frozenset[str] = frozenset({
    "created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url",
    "self", "file", "schema", "id", "os_hash_algo", "os_hash_value", "stores",
})

#: Keys nobody may set (403 "reserved"); plus every key starting with ``RESERVED_PREFIX``.
RESERVED: frozenset[str] = frozenset({"location", "locations", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"

#: Keys a create body may not carry (403): read-only except ``id``, and reserved.
CREATE_FORBIDDEN: frozenset[str] = (READ_ONLY - {"id"}) | RESERVED

#: ``os_glance_*`` properties the server records for clients to read (import outcome).
PUBLIC_GLANCE_KEYS: frozenset[str] = frozenset(
    {"os_glance_failed_import", "os_glance_importing_to_stores"}
)

#: Record keys that never leave the server.
INTERNAL_KEYS: frozenset[str] = frozenset({"properties", "deleted_at", "members", "member_stamps"})

MAX_PROPERTIES = 128
MAX_TAGS = 128
MAX_TAG_LENGTH = 255


def is_reserved(key: str) -> bool:
    """True for keys no client may set: ``RESERVED`` and the ``os_glance`` namespace."""
    return key in RESERVED or key.startswith(RESERVED_PREFIX)
