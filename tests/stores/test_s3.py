"""S3Store runs the conformance suite unchanged against Swift's real s3api (tests/conftest.py)."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.stores.contract import StoreContract

pytestmark = pytest.mark.swift


class TestS3Store(StoreContract):
    many_keys = 150  # above the fixture's page size (100): the listing crosses a page

    @pytest.fixture
    def store(self, s3_store: Any) -> Iterator[Any]:
        yield s3_store
