"""memtune: freed buffers are reused by the process, not returned to the kernel and faulted
back in. Measured as the minor page faults of a fresh interpreter that allocates, touches and
frees 32 MiB of buffers again and again, with and without the tuning (glibc only)."""
import subprocess
import sys

import pytest

from cas_glance import memtune

PROGRAM = """
import resource, sys
from cas_glance.memtune import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(25):  # a request's worth of buffers (32 MiB), then all freed
    bufs = [bytearray(4 << 20) for _ in range(8)]
    for buf in bufs:
        buf[::4096] = b"x" * len(range(0, 4 << 20, 4096))  # touch every page
    del bufs, buf
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], check=True, capture_output=True, text=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_buffers_are_reused_instead_of_faulted_in_again() -> None:
    default, tuned = faults("default"), faults("tuned")
    pages = 25 * (32 << 20) // 4096
    assert default > pages // 2  # each buffer mapped afresh: about one fault per page
    assert tuned < pages // 10  # the first round faults its 32 MiB in, later rounds reuse it


def test_tuning_reports_success_on_glibc() -> None:
    assert memtune.keep_freed_memory() is sys.platform.startswith("linux")
