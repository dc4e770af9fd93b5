"""SwiftStore runs the conformance suite unchanged against a real Swift (tests/conftest.py)."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.stores.contract import StoreContract

pytestmark = pytest.mark.swift


class TestSwiftStore(StoreContract):
    many_keys = 150  # above the fixture's page size (100): the listing crosses a page

    @pytest.fixture
    def store(self, swift_store: Any) -> Iterator[Any]:
        yield swift_store
