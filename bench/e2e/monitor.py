"""Server resource use during one measured phase: CPU seconds and peak RSS.

Read from /proc/<pid> of a local server through psutil. CPU is user + system time of the
process (and of children it has waited for), taken before and after. Peak RSS is the larger
of two readings: a sampler thread reading RSS every ~50 ms, and the kernel's VmHWM (lifetime
high-water mark) when it rose during the phase, which catches spikes between samples.

With no pid (a remote endpoint) the server figures are None. The client's own CPU seconds
(this process, all threads) are always recorded, to show the client is not the bottleneck.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import psutil

_INTERVAL = 0.05


@dataclass(frozen=True)
class Usage:
    """What the server used during a phase (None when the server is not local)."""

    cpu_s: float | None
    peak_rss: int | None
    client_cpu_s: float | None = None

    @property
    def peak_rss_mib(self) -> float | None:
        return None if self.peak_rss is None else self.peak_rss / (1 << 20)


def read_vmhwm(pid: int) -> int | None:
    """VmHWM of ``pid`` in bytes, or None where /proc does not provide it."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


class Monitor:
    """Context manager measuring one phase: ``with Monitor(pid) as m: ...; m.usage``."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.usage = Usage(None, None)
        self._proc = psutil.Process(pid) if pid is not None else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._cpu0 = 0.0
        self._hwm0: int | None = None
        self._client0 = 0.0

    def _sample(self) -> None:
        assert self._proc is not None
        while not self._stop.is_set():
            try:
                self._peak = max(self._peak, self._proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(_INTERVAL)

    def __enter__(self) -> Self:
        self._client0 = _own_cpu_seconds()
        if self._proc is None:
            return self
        self._cpu0 = _cpu_seconds(self._proc)
        self._hwm0 = read_vmhwm(self._proc.pid)
        self._peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client = _own_cpu_seconds() - self._client0
        self.usage = Usage(None, None, client)
        if self._proc is None or self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        try:
            cpu = _cpu_seconds(self._proc) - self._cpu0
            self._peak = max(self._peak, self._proc.memory_info().rss)
        except psutil.Error:
            return
        hwm1 = read_vmhwm(self._proc.pid)
        if hwm1 is not None and self._hwm0 is not None and hwm1 > self._hwm0:
            self._peak = max(self._peak, hwm1)
        self.usage = Usage(cpu_s=cpu, peak_rss=self._peak, client_cpu_s=client)
