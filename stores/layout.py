"""Where a blob key lives inside a backend: the only module that knows key paths.

"chunks/ab/cd/<full digest>": two levels of 256-way fan-out keep directories (and Swift/S3
listing prefixes) small up to ~10^9 blobs; the full digest is always the last path element, so
a listing can be turned back into keys without any other table.
"""
from __future__ import annotations

import re

PREFIX = "chunks/"
_KEY = re.compile(r"^[0-9a-f]{64}$")


def validate_key(key: str) -> str:
    """Return `key` if it is a lower-case 64-hex digest, else raise ValueError."""
    if not _KEY.match(key):
        raise ValueError(f"not a blob key (64 lower-case hex digits expected): {key[:80]!r}")
    return key


def object_name(key: str) -> str:
    """The relative path / object name of a key: chunks/ab/cd/<key>."""
    validate_key(key)
    return f"{PREFIX}{key[0:2]}/{key[2:4]}/{key}"


def key_from_name(name: str) -> str | None:
    """Inverse of object_name; None for names that are not blobs (temp files, other data)."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX):].split("/")
    if len(parts) != 3:
        return None
    key = parts[2]
    if not _KEY.match(key) or parts[0] != key[0:2] or parts[1] != key[2:4]:
        return None
    return key


def listing_start(after: str) -> str:
    """An object name at or below the first name whose key sorts after `after`, for object
    stores that list "strictly after a name" (S3 StartAfter, Swift marker).

    Exact for a real key. For any other string (a resume point, a prefix) the name of its
    first two characters' fan-out directory is a lower bound: every key k > after has
    k[:2] >= after[:2], so at most one directory is re-read and filtered out by the caller.
    """
    try:
        return object_name(validate_key(after))
    except ValueError:
        return PREFIX + after[:2]
