"""The resolved settings of one benchmark run (after ``--quick`` and explicit flags).

Frozen: phases read them, nothing changes them. ``FULL`` and ``QUICK`` hold the defaults of
each mode; an explicit command-line flag always wins over either.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20

PHASES = ("throughput", "series", "concurrent", "listing")

FULL: dict[str, object] = {
    "size": 1024 * MIB,
    "repeat": 3,
    "series_base": 256 * MIB,
    "snapshots": 5,
    "concurrency": 16,
    "concurrent_size": 32 * MIB,
    "list_images": 10_000,
    "list_requests_small": 250,
    "list_requests_large": 40,
}

QUICK: dict[str, object] = {
    "size": 32 * MIB,
    "repeat": 1,
    "series_base": 32 * MIB,
    "snapshots": 3,
    "concurrency": 8,
    "concurrent_size": 4 * MIB,
    "list_images": 500,
    "list_requests_small": 60,
    "list_requests_large": 10,
}


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know; see ``bench.e2e.cli`` for the flags."""

    size: int
    repeat: int
    series_base: int
    snapshots: int
    concurrency: int
    concurrent_size: int
    list_images: int
    list_requests_small: int
    list_requests_large: int
    quick: bool = False
    endpoint: str | None = None
    token: str | None = None
    server_pid: int | None = None
    data_dir: Path | None = None
    series_dir: Path | None = None
    change: float = 0.02
    seed: int = 7
    create_parallel: int = 32
    phases: tuple[str, ...] = PHASES
    json_path: Path | None = None
    plot_path: Path | None = None
    work_dir: Path | None = None
    keep: bool = False
    server_config: Path | None = None
    keepalive: bool = True

    @property
    def local(self) -> bool:
        """True when the run starts its own cas-glance server."""
        return self.endpoint is None
