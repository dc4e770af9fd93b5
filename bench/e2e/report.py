"""Reporting: the catalogue of figures, the Glance 33 reference and targets, the terminal
table, a Markdown table and the JSON document.

The reference numbers are OpenStack Glance 33.0.0 measured on this machine type (uWSGI,
1 process, filesystem store, SQLite). Targets are judged only when the run has the
configuration the target is stated for (e.g. 1 GiB uploads, 10,000 images); otherwise the
"met" column says "n/a" and the JSON holds ``null``. Given a baseline run (``--baseline``,
e.g. the same bench against OpenStack Glance in the same session), the upload and concurrent
targets become 1.8x the baseline's figures: the comparison the targets are stated for.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.e2e.settings import Settings

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Figure:
    """One reported number: where it sits in the results, how to show and judge it."""

    key: tuple[str, str]
    label: str
    unit: str
    reference: str = "—"
    target: tuple[str, float] | None = None  # (">=" | "<", bound)
    judged_when: Callable[[Settings], bool] = lambda s: True
    server_side: bool = False  # needs a local server (pid / data dir); None on remotes
    optional: bool = False  # only present with some flags (--series DIR)
    # With a baseline run (--baseline, e.g. OpenStack Glance in the same session) the target
    # becomes this factor times the baseline's figure, the "same machine, same run".
    vs_baseline: float | None = None

    @property
    def name(self) -> str:
        return ".".join(self.key)


def _full_size(s: Settings) -> bool:
    return s.size >= GIB


def _full_concurrency(s: Settings) -> bool:
    return s.concurrency == 16 and s.concurrent_size == 32 * MIB


def _full_listing(s: Settings) -> bool:
    return s.list_images >= 10_000


def _series_figures(key: str, what: str, optional: bool) -> list[Figure]:
    return [
        Figure((key, "logical_bytes"), f"{what}: logical", "MiB", optional=optional),
        Figure((key, "stored_bytes"), f"{what}: stored", "MiB", server_side=True, optional=optional),
        Figure((key, "ratio"), f"{what}: logical / stored", "x", "1.00 (no dedup)",
               server_side=True, optional=optional),
        Figure((key, "dedup_ratio"), f"{what}: dedup ratio (engine)", "x", server_side=True,
               optional=optional),
        Figure((key, "compression_ratio"), f"{what}: compression ratio (engine)", "x",
               server_side=True, optional=optional),
        Figure((key, "median_mib_s"), f"{what}: ingest, median per image", "MiB/s", optional=optional),
    ]


FIGURES: list[Figure] = [
    Figure(("upload_content_length", "mib_s"), "upload {size}, Content-Length", "MiB/s", "~240",
           (">=", 1.8 * 240), _full_size, vs_baseline=1.8),
    Figure(("upload_chunked", "mib_s"), "upload {size}, chunked 1 MiB", "MiB/s", "~240",
           (">=", 1.8 * 240), _full_size, vs_baseline=1.8),
    Figure(("download", "mib_s"), "download {size}, first read", "MiB/s", "~2,150", (">=", 1024), _full_size),
    Figure(("download_again", "mib_s"), "download {size}, read again", "MiB/s", "~2,150", (">=", 1024),
           _full_size),
    Figure(("upload_content_length", "server_peak_rss_mib"), "server peak RSS, upload (C-L)", "MiB",
           "—", ("<", 300), _full_size, server_side=True),
    Figure(("upload_chunked", "server_peak_rss_mib"), "server peak RSS, upload (chunked)", "MiB",
           "—", ("<", 300), _full_size, server_side=True),
    Figure(("download", "server_peak_rss_mib"), "server peak RSS, download", "MiB", server_side=True),
    Figure(("upload_content_length", "server_cpu_s_per_gib"), "server CPU per GiB, upload (C-L)",
           "s", "3.1–3.8", server_side=True),
    Figure(("upload_chunked", "server_cpu_s_per_gib"), "server CPU per GiB, upload (chunked)",
           "s", "3.1–3.8", server_side=True),
    Figure(("download", "server_cpu_s_per_gib"), "server CPU per GiB, download", "s", server_side=True),
    Figure(("upload_content_length", "client_cpu_s_per_gib"), "client CPU per GiB, upload (C-L)", "s"),
    Figure(("download", "client_cpu_s_per_gib"), "client CPU per GiB, download", "s"),
    Figure(("concurrent", "aggregate_mib_s"), "{n} concurrent uploads of {each}: aggregate", "MiB/s",
           "~200", (">=", 1.8 * 200), _full_concurrency, vs_baseline=1.8),
    Figure(("concurrent", "p50_s"), "{n} concurrent uploads: p50 per upload", "s"),
    Figure(("concurrent", "p99_s"), "{n} concurrent uploads: p99 per upload", "s"),
    Figure(("concurrent", "server_peak_rss_mib"), "server peak RSS, concurrent uploads", "MiB",
           server_side=True),
    Figure(("list_limit20", "p50_ms"), "list limit=20, {images} images: p50", "ms"),
    Figure(("list_limit20", "p99_ms"), "list limit=20, {images} images: p99", "ms",
           "12 (1,000 images)", ("<", 10), _full_listing),
    Figure(("list_limit1000", "p50_ms"), "list limit=1000, {images} images: p50", "ms"),
    Figure(("list_limit1000", "p99_ms"), "list limit=1000, {images} images: p99", "ms",
           "356 (1,000 images)", ("<", 100), _full_listing),
    *_series_figures("series", "snapshot series", optional=False),
    *_series_figures("dir_series", "--series DIR", optional=True),
]


def _human(nbytes: int) -> str:
    if nbytes >= GIB and nbytes % GIB == 0:
        return f"{nbytes // GIB} GiB"
    return f"{nbytes / MIB:g} MiB"


def label_of(fig: Figure, s: Settings) -> str:
    return fig.label.format(size=_human(s.size), n=s.concurrency, each=_human(s.concurrent_size),
                            images=f"{s.list_images:,}")


def value_of(results: dict[str, Any], fig: Figure) -> float | None:
    section = results.get(fig.key[0])
    value = section.get(fig.key[1]) if isinstance(section, dict) else None
    if value is not None and fig.unit == "MiB" and fig.key[1].endswith("_bytes"):
        return float(value) / MIB
    return None if value is None else float(value)


def judge(fig: Figure, value: float | None, s: Settings) -> bool | None:
    """True/False against the target; None with no target, no value or a scaled-down run."""
    if fig.target is None or value is None or not fig.judged_when(s):
        return None
    op, bound = fig.target
    return value >= bound if op == ">=" else value < bound


def rows(results: dict[str, Any], s: Settings) -> list[dict[str, Any]]:
    """One row per figure present in this run (optional ones only when measured)."""
    out = []
    for fig in FIGURES:
        if fig.key[0] not in results and (fig.optional or _phase_skipped(fig, s)):
            continue
        value = value_of(results, fig)
        target = None if fig.target is None else f"{fig.target[0]} {fig.target[1]:g}"
        out.append({"figure": fig.name, "label": label_of(fig, s), "unit": fig.unit, "value": value,
                    "reference": fig.reference, "target": target, "met": judge(fig, value, s)})
    return out


def _phase_skipped(fig: Figure, s: Settings) -> bool:
    phase = {"upload_content_length": "throughput", "upload_chunked": "throughput",
             "download": "throughput", "download_again": "throughput", "concurrent": "concurrent",
             "list_limit20": "listing", "list_limit1000": "listing"}.get(fig.key[0], "series")
    return phase not in s.phases


def missing_figures(document: dict[str, Any], local: bool = True) -> list[str]:
    """Names of required figures that are absent or null in a JSON document."""
    present = {row["figure"]: row["value"] for row in document.get("figures", [])}
    return [fig.name for fig in FIGURES
            if not fig.optional and (local or not fig.server_side) and present.get(fig.name) is None]


def _fmt(value: float | None) -> str:
    if value is None:
        return "unknown"
    if math.isinf(value):
        return "inf"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[met]


def add_baseline(table_rows: list[dict[str, Any]], baseline: dict[str, Any]) -> None:
    """Put the same figure of a baseline run (its ``--json``) beside each row; a figure with
    a `vs_baseline` factor is then judged against that many times the baseline's value."""
    theirs = {row["figure"]: row["value"] for row in baseline.get("figures", [])}
    factors = {fig.name: fig.vs_baseline for fig in FIGURES if fig.vs_baseline is not None}
    for row in table_rows:
        row["baseline"] = base = theirs.get(row["figure"])
        factor = factors.get(row["figure"])
        if factor is not None and base:
            bound = factor * base
            row["target"] = f">= {factor:g}x ({bound:,.0f})"
            if row["met"] is not None:  # judged: the run has the target's configuration
                row["met"] = row["value"] is not None and row["value"] >= bound


def _ratio(row: dict[str, Any]) -> str:
    ours, theirs = row["value"], row.get("baseline")
    if ours is None or not theirs:
        return "—"
    return f"{ours / theirs:.2f}x"


def _cells(row: dict[str, Any], with_baseline: bool) -> list[str]:
    cells = [row["label"], f"{_fmt(row['value'])} {row['unit']}", row["reference"]]
    if with_baseline:
        cells += [f"{_fmt(row.get('baseline'))} {row['unit']}", _ratio(row)]
    return [*cells, row["target"] or "—", _met(row["met"]) if row["target"] else ""]


def _head(with_baseline: bool) -> list[str]:
    extra = ["baseline", "vs baseline"] if with_baseline else []
    return ["figure", "value", "Glance 33 (FACTS)", *extra, "target", "met"]


def table(table_rows: list[dict[str, Any]]) -> str:
    """The terminal table (with baseline columns when a baseline was given)."""
    with_baseline = any("baseline" in r for r in table_rows)
    lines = [_head(with_baseline), *(_cells(r, with_baseline) for r in table_rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(table_rows: list[dict[str, Any]]) -> str:
    """The same table as GitHub Markdown (for the README)."""
    with_baseline = any("baseline" in r for r in table_rows)
    head = _head(with_baseline)
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + ":---:|"]
    out += ["| " + " | ".join(_cells(r, with_baseline)) + " |" for r in table_rows]
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], results: dict[str, Any],
               table_rows: list[dict[str, Any]]) -> None:
    """The whole run, machine-readable."""
    document = {"meta": meta, "figures": table_rows, "results": results}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
