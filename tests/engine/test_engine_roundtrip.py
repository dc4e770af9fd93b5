"""Uploads read back byte-exact: whole images and every kind of byte range."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from engine_helpers import (
    random_bytes,
    read_all,
    small_cfg,
    stored_bytes,
    text_like,
    upload,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cas_glance.engine import Engine
from stores.memory import MemoryStore

MIXED = random_bytes(300_000, 1) + bytes(200_000) + text_like(300_000, 2) + bytes(70_000) + b"end"

STREAMS = {
    "empty": b"",
    "one-byte": b"x",
    "random": random_bytes(1_500_000, 3),
    "zeros": bytes(1_000_000),
    "text": text_like(1_000_000, 4),
    "mixed": MIXED,
}


@pytest.mark.parametrize("name", STREAMS)
async def test_upload_reads_back_byte_exact(engine: Engine, name: str) -> None:
    data = STREAMS[name]
    rec = await upload(engine, name, data, block=65_537)
    assert rec["status"] == "active" and rec["size"] == len(data)
    assert rec["checksum"] == hashlib.md5(data).hexdigest()
    assert rec["os_hash_algo"] == "sha512" and rec["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert await read_all(engine, name) == data


async def test_all_zero_image_stores_no_blob(engine: Engine, store: MemoryStore) -> None:
    await upload(engine, "z", bytes(3 << 20))
    assert stored_bytes(store) == 0
    assert await read_all(engine, "z", 12345, 2_000_000) == bytes(2_000_000 - 12345)


async def test_configured_hash_algorithm_is_used(tmp_path: Path) -> None:
    eng = Engine.open(small_cfg(tmp_path, hashing_algorithm="sha256"), MemoryStore())
    try:
        rec = await upload(eng, "h", MIXED)
        assert rec["os_hash_algo"] == "sha256" and rec["os_hash_value"] == hashlib.sha256(MIXED).hexdigest()
    finally:
        eng.close()


async def test_range_is_clamped_to_image_size(engine: Engine) -> None:
    await upload(engine, "m", MIXED)
    assert await read_all(engine, "m", len(MIXED) - 10, len(MIXED) + 1000) == MIXED[-10:]
    assert await read_all(engine, "m", len(MIXED), None) == b""


# -- hypothesis over ranges of one sample (one engine and one event loop for all examples) --
SAMPLE = random_bytes(700_000, 5) + bytes(400_000) + text_like(900_000, 6) + random_bytes(100_000, 7)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    runner = asyncio.Runner()
    eng = Engine.open(small_cfg(tmp_path_factory.mktemp("sample")), MemoryStore())
    runner.run(upload(eng, "s", SAMPLE, block=100_003))
    yield runner, eng
    eng.close()
    runner.close()


def _boundaries(eng: Engine) -> list[int]:
    return [off for off, _d, _n in eng.index.manifest("s")] + [len(SAMPLE)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_range_reads_back_byte_exact(sample, data) -> None:  # type: ignore[no-untyped-def]
    runner, eng = sample
    cuts = _boundaries(eng)
    # half the time start/end sit on or next to a chunk boundary, the rest anywhere
    near = st.sampled_from(cuts).flatmap(lambda c: st.integers(max(c - 2, 0), min(c + 2, len(SAMPLE))))
    anywhere = st.integers(0, len(SAMPLE))
    a = data.draw(st.one_of(near, anywhere))
    b = data.draw(st.one_of(near, anywhere))
    start, end = min(a, b), max(a, b)
    assert runner.run(read_all(eng, "s", start, end)) == SAMPLE[start:end]


def test_sample_has_zero_chunks_and_many_boundaries(sample) -> None:  # type: ignore[no-untyped-def]
    _runner, eng = sample
    entries = list(eng.index.manifest("s"))
    assert len(entries) > 100
    assert any(d is None for _o, d, _n in entries)
    assert [o for o, _d, _n in entries][1:] == [o + n for o, _d, n in entries][:-1]  # contiguous


def test_manifest_seek_starts_at_the_covering_chunk(sample) -> None:  # type: ignore[no-untyped-def]
    _runner, eng = sample
    entries = list(eng.index.manifest("s"))
    for off, _d, n in entries[::17]:
        for probe in (off, off + n // 2, off + n - 1):
            assert eng.index.manifest_batch("s", probe, 1)[0][0] == off


async def test_read_reuses_group_buffers_but_never_one_a_consumer_still_holds(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from cas_glance import reader

    monkeypatch.setattr(reader, "GROUP_BYTES", 256 << 10)
    monkeypatch.setattr(reader, "FIRST_GROUP_BYTES", 256 << 10)
    data = random_bytes(6 << 20, 7) + bytes(1 << 20) + text_like(3 << 20, 8)
    await upload(engine, "b", data)
    kept: list[tuple[int, memoryview, bytes]] = []
    seen: set[int] = set()
    pos = n = 0
    async for piece in engine.read("b", 1000, len(data) - 1000):
        assert piece.readonly
        seen.add(id(piece.obj))
        assert bytes(piece) == data[1000 + pos:1000 + pos + len(piece)]
        if n % 3 == 0:  # hold every third piece the whole read long
            kept.append((pos, piece, bytes(piece)))
        pos, n = pos + len(piece), n + 1
        del piece
    assert pos == len(data) - 2000 and len(kept) > 5
    for at, piece, copy in kept:  # a held piece's buffer was never handed to a later job
        assert bytes(piece) == copy == data[1000 + at:1000 + at + len(copy)]
    assert len(seen) < pos // (256 << 10)  # and the others were reused
