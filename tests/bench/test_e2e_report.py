"""The report judges the throughput targets against a same-run baseline when one is given:
the issue's targets are "1.8x Glance on the same machine, same bench, same run"."""
from __future__ import annotations

from bench.e2e import report
from bench.e2e.settings import FULL, Settings

RESULTS = {"upload_content_length": {"mib_s": 250.0}, "upload_chunked": {"mib_s": 190.0},
           "concurrent": {"aggregate_mib_s": 200.0}, "download": {"mib_s": 1100.0}}


def _row(rows: list[dict], name: str) -> dict:
    (row,) = [r for r in rows if r["figure"] == name]
    return row


def _baseline(c_l: float, chunked: float, concurrent: float, download: float) -> dict:
    values = {"upload_content_length.mib_s": c_l, "upload_chunked.mib_s": chunked,
              "concurrent.aggregate_mib_s": concurrent, "download.mib_s": download}
    return {"figures": [{"figure": k, "value": v} for k, v in values.items()]}


def test_without_a_baseline_the_fixed_targets_apply() -> None:
    rows = report.rows(RESULTS, Settings(**FULL))
    assert _row(rows, "upload_content_length.mib_s")["met"] is False  # 250 < 432
    assert _row(rows, "download.mib_s")["met"] is True


def test_a_baseline_turns_the_upload_targets_into_ratios_of_it() -> None:
    rows = report.rows(RESULTS, Settings(**FULL))
    report.add_baseline(rows, _baseline(c_l=130, chunked=110, concurrent=150, download=2000))
    c_l, chunked = _row(rows, "upload_content_length.mib_s"), _row(rows, "upload_chunked.mib_s")
    assert (c_l["met"], c_l["target"]) == (True, ">= 1.8x (234)")  # 250 >= 1.8 * 130
    assert (chunked["met"], chunked["target"]) == (False, ">= 1.8x (198)")  # 190 < 1.8 * 110
    assert _row(rows, "concurrent.aggregate_mib_s")["met"] is False  # 200 < 270
    # an absolute target stays absolute: download >= 1 GiB/s whatever the baseline did
    assert _row(rows, "download.mib_s")["met"] is True


def test_a_scaled_down_run_is_still_not_judged() -> None:
    rows = report.rows(RESULTS, Settings(**{**FULL, "size": 64 << 20}))
    report.add_baseline(rows, _baseline(c_l=100, chunked=100, concurrent=100, download=100))
    assert _row(rows, "upload_content_length.mib_s")["met"] is None
