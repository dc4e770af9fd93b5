"""A dependency-free progress bar on stderr for the long phases.

On a terminal it redraws one line at most ten times a second; otherwise (CI logs) it prints
one line when a phase starts and one when it ends, so logs stay short.
"""
from __future__ import annotations

import sys
import time
from typing import Self, TextIO

_WIDTH = 30
_INTERVAL = 0.1


class Progress:
    """Progress of one phase: ``advance(n)`` as work completes, ``close()`` at the end."""

    def __init__(self, label: str, total: float, unit: str = "", stream: TextIO | None = None):
        self.label = label
        self.total = max(float(total), 1e-9)
        self.unit = unit
        self.done = 0.0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._start = time.perf_counter()
        self._last = 0.0
        if not self._tty:
            self._stream.write(f"[bench] {label} ...\n")
            self._stream.flush()

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        now = time.perf_counter()
        if self._tty and (now - self._last >= _INTERVAL or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * _WIDTH)
        elapsed = now - self._start
        self._stream.write(
            f"\r{self.label:<34} [{bar:<{_WIDTH}}] {frac * 100:5.1f}% "
            f"{self.done:,.0f}/{self.total:,.0f}{self.unit} {elapsed:6.1f}s"
        )
        self._stream.flush()

    def close(self) -> None:
        elapsed = time.perf_counter() - self._start
        if self._tty:
            self._draw(time.perf_counter())
            self._stream.write("\n")
        else:
            self._stream.write(f"[bench] {self.label} done in {elapsed:.1f}s\n")
        self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
