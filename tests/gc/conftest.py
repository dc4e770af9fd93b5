"""Fixtures for the collector tests (helpers live in tests/gc/lab.py)."""
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cas_glance.config import Config
from cas_glance.engine import Engine
from tests.gc.lab import Lab, small_config


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return small_config(tmp_path / "data")


@pytest.fixture
def lab(cfg: Config) -> Iterator[Lab]:
    engine = Engine.open(cfg)
    try:
        yield Lab(engine)
    finally:
        engine.close()


@pytest.fixture
def base_data() -> bytes:
    return random.Random(1).randbytes(256 * 1024)

