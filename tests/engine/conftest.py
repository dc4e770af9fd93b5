"""Fixtures for the engine tests: an Engine over a MemoryStore in tmp_path."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_helpers import small_cfg

from cas_glance.engine import Engine
from stores.memory import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def engine(tmp_path: Path, store: MemoryStore) -> Iterator[Engine]:
    eng = Engine.open(small_cfg(tmp_path), store)
    yield eng
    eng.close()
