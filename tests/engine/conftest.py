"""Fixtures for the engine tests: an Engine over a MemoryStore in tmp_path."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_helpers import small_cfg  # noqa: E402
from cas_glance.engine import Engine  # noqa: E402
from stores.memory import MemoryStore  # noqa: E402


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def engine(tmp_path: Path, store: MemoryStore) -> Iterator[Engine]:
    eng = Engine.open(small_cfg(tmp_path), store)
    yield eng
    eng.close()
