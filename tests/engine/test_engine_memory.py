"""Ingest memory is bounded independently of image size: peak RSS of a child process.

The child (rss_child.py) measures its own ru_maxrss, so the test runner's memory does not
count. 512 MiB here; bench/test_engine.py runs the same child over 4 GiB.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).resolve().parent / "rss_child.py"
LIMIT_KIB = 250 * 1024


def run_child(mib: int, kind: str, tmp: Path) -> dict:
    out = subprocess.run([sys.executable, str(CHILD), str(mib), kind, str(tmp)],
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mib,kind", [(512, "null"), (96, "fs")])
def test_ingest_peak_rss_stays_bounded(tmp_path: Path, mib: int, kind: str) -> None:
    got = run_child(mib, kind, tmp_path)
    print(got)
    assert got["size"] == mib << 20
    assert got["maxrss_kib"] < LIMIT_KIB, got
    # and it does not scale with the data: far below the image size
    assert got["maxrss_kib"] - got["maxrss_kib_before"] < 128 * 1024, got
