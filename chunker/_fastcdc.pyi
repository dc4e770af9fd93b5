"""Type stubs for the native FastCDC scanner (chunker/_fastcdc.c)."""

from typing_extensions import Buffer

def cut(
    buf: Buffer,
    min_size: int,
    normal_size: int,
    max_size: int,
    mask_s: int,
    mask_l: int,
    final: bool,
    /,
) -> list[int]:
    """Chunk lengths from the start of buf; with final false, stop while
    fewer than max_size bytes remain.  Runs with the GIL released."""

def gear_table() -> tuple[int, ...]:
    """The 256 gear values compiled into the kernel."""
