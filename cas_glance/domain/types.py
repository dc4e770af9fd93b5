"""Shared type names of the domain layer (no behaviour)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: An image record: base keys, ``properties`` (extras), internal keys. See image.py.
Record = dict[str, Any]
#: A list filter built once per request (filters.py).
Predicate = Callable[[Record], bool]
