"""Smoke test of the end-to-end benchmark: `python -m bench --quick` against a real local
cas-glance server (started by the harness itself) must finish and report every figure.

No thresholds: CI machines differ. What is checked is that the harness and the server work
together end to end: every required figure is present and numeric, uploads were verified
(checksum and a hashed download), and the optional plot is written when matplotlib exists.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from bench.e2e.report import missing_figures

REPO = Path(__file__).resolve().parents[2]
_TIMEOUT = 240


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--work-dir", str(tmp_path)]
    has_plot = importlib.util.find_spec("matplotlib") is not None
    if has_plot:
        cmd += ["--plot", str(tmp_path / "series.png")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=_TIMEOUT,
                          check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    document = json.loads(out.read_text())
    assert missing_figures(document) == []
    checks = document["results"]["verification"]
    assert all(c["checksum_ok"] for c in checks)
    assert any(c.get("download_md5_ok") for c in checks)
    assert document["results"]["series"]["images"] == document["meta"]["settings"]["snapshots"] + 1
    if has_plot:
        assert (tmp_path / "series.png").stat().st_size > 10_000
    assert "upload" in proc.stdout and "Glance 33" in proc.stdout


def test_bad_arguments_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--phases", "nonsense"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
