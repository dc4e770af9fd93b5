"""`cas-glance stats` reports images, bytes and ratios from the index."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from engine_helpers import random_bytes, small_cfg, text_like, upload

from cas_glance import stats
from cas_glance.engine import Engine
from stores.memory import MemoryStore


async def test_stats_reports_dedup_and_compression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = MemoryStore()
    eng = Engine.open(small_cfg(tmp_path), store)
    data = random_bytes(500_000, 1) + text_like(500_000, 2) + bytes(200_000)
    await upload(eng, "a", data)
    await upload(eng, "b", data)
    eng.close()
    args = argparse.Namespace(data_dir=tmp_path, json=True, config=None)
    assert stats.main(args) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["images"] == 2 and got["logical_bytes"] == 2 * len(data)
    assert got["stored_bytes"] == sum(i.size for i in store.list())
    # chunks at the edge of the zero run carry a few zeros, so unique is a little over 1 MB
    assert 1_000_000 <= got["unique_bytes"] < 1_100_000
    assert got["dedup_ratio"] == pytest.approx(2 * len(data) / got["unique_bytes"], rel=1e-3)
    assert 1.3 < got["compression_ratio"] < 2.0
    args.json = False
    assert stats.main(args) == 0
    assert f"dedup ratio        {got['dedup_ratio']:.2f}x" in capsys.readouterr().out


def test_stats_without_an_index_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stats.main(argparse.Namespace(data_dir=tmp_path / "none", json=False, config=None)) == 1
    assert "no index" in capsys.readouterr().err
