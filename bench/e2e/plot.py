"""``--plot FILE.png``: ingest throughput and stored vs logical bytes over the series.

matplotlib is optional (the ``bench`` extra); without it :func:`plot_series` raises
:class:`PlotUnavailable` with the install hint, and the caller reports it and goes on.
One panel pair per series measured (synthetic snapshots and, with ``--series``, the
directory): left, MiB/s per image; right, cumulative logical and stored MiB.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

MIB = 1 << 20


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'cas-glance[bench]' "
                              "(or pip install matplotlib)") from exc
    return plt


def _panel_pair(axes: Any, title: str, series: dict[str, Any]) -> None:
    images = series["per_image"]
    names = [i["name"] for i in images]
    x = range(len(images))
    speed, space = axes
    speed.bar(x, [i["mib_s"] for i in images], color="tab:blue")
    speed.set_title(f"{title}: ingest throughput")
    speed.set_ylabel("MiB/s")
    logical = [i["logical_bytes"] / MIB for i in images]
    space.plot(x, logical, marker="o", label="logical (cumulative)", color="tab:gray")
    if all(i["stored_bytes"] is not None for i in images):
        stored = [i["stored_bytes"] / MIB for i in images]
        space.plot(x, stored, marker="o", label=f"stored ({series['stored_source']})", color="tab:green")
    else:
        space.text(0.5, 0.5, "stored bytes unknown (remote endpoint)", transform=space.transAxes,
                   ha="center", color="tab:red")
    ratio = series.get("ratio")
    space.set_title(f"{title}: bytes" + (f" (logical/stored {ratio:.1f}x)" if ratio else ""))
    space.set_ylabel("MiB")
    space.set_ylim(bottom=0)
    space.legend(loc="upper left")
    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)


def plot_series(results: dict[str, Any], path: Path, subtitle: str) -> None:
    """Write the chart of every series in ``results`` to ``path`` (PNG)."""
    plt = _pyplot()
    found = [(key, results[key]) for key in ("series", "dir_series") if key in results]
    if not found:
        raise ValueError("--plot: no series was measured (phase 'series' skipped?)")
    fig, axes = plt.subplots(len(found), 2, figsize=(12, 4.2 * len(found)), squeeze=False)
    for row, (key, series) in zip(axes, found):
        _panel_pair(row, "snapshot series" if key == "series" else "--series DIR", series)
    fig.suptitle(subtitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
