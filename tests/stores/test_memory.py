"""MemoryStore runs the conformance suite unchanged."""
from __future__ import annotations

from typing import Iterator

import pytest

from stores.base import BlobStore
from stores.memory import MemoryStore
from tests.stores.contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = MemoryStore()
        yield s
        s.close()
