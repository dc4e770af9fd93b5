"""fsck names each kind of damage, exits non-zero on it, and --repair fixes refcounts."""
from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
import subprocess
import sys
from pathlib import Path

import lmdb
import msgpack
import pytest

from cas_glance import fsck
from cas_glance.config import Config
from stores.registry import build_store
from tests.blob_files import corrupt
from tests.gc.lab import Lab, variant

ROOT = Path(__file__).resolve().parents[2]


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"verify_blobs": False, "repair": False, **kw})


def _run(cfg: Config, capsys: pytest.CaptureFixture[str], **kw: object) -> tuple[int, str]:
    code = fsck.main(cfg, _args(**kw))
    return code, capsys.readouterr().out


def _set_refcount(cfg: Config, digest: str, refcount: int) -> None:
    """Damage the index behind its back (the engine's Index must be closed)."""
    env = lmdb.open(str(cfg.index_dir), max_dbs=8)
    db = env.open_db(b"chunks")
    with env.begin(write=True) as txn:
        entry = msgpack.unpackb(txn.get(bytes.fromhex(digest), db=db))
        entry[0] = refcount
        txn.put(bytes.fromhex(digest), msgpack.packb(entry), db=db)
    env.close()


@pytest.fixture
async def two_images(lab: Lab, base_data: bytes) -> AsyncIterator[Lab]:
    await lab.upload(base_data)
    await lab.upload(variant(base_data, seed=3))
    lab.engine.close()  # fsck.main opens its own, as the CLI process does
    lab.store = build_store(lab.engine.cfg)  # to damage it behind fsck's back
    yield lab
    lab.store.close()


def test_a_healthy_store_is_clean(two_images: Lab, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(cfg, capsys, verify_blobs=True)
    assert code == 0, out
    assert "0 problem(s)" in out


def test_a_missing_blob_is_named(two_images: Lab, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    victim = next(iter(two_images.store.list())).key
    two_images.store.delete(victim)
    code, out = _run(cfg, capsys)
    assert code == 1
    assert f"missing-blob: live chunk {victim} has no blob in the store" in out


def test_a_wrong_refcount_is_named_and_repaired(two_images: Lab, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    victim = next(iter(two_images.store.list())).key
    _set_refcount(cfg, victim, 7)
    code, out = _run(cfg, capsys)
    assert code == 1
    assert f"refcount: chunk {victim} has refcount 7, manifests name it" in out
    code, out = _run(cfg, capsys, repair=True)
    assert code == 0, out
    assert "repaired 1 refcount(s)" in out
    assert _run(cfg, capsys)[0] == 0


def test_a_refcount_repaired_to_zero_becomes_collectable(two_images: Lab, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    from cas_glance import blobfmt

    raw = b"lost reference" * 100
    digest = blobfmt.digest(raw)
    two_images.store.put(digest, blobfmt.encode(raw))
    two_images.store.flush([digest])
    env = lmdb.open(str(cfg.index_dir), max_dbs=8)
    db = env.open_db(b"chunks")
    with env.begin(write=True) as txn:  # an entry with a reference no manifest holds
        txn.put(bytes.fromhex(digest), msgpack.packb([1, 0, 0, 0, 0, len(raw)]), db=db)
    env.close()
    assert _run(cfg, capsys)[0] == 1
    code, out = _run(cfg, capsys, repair=True)
    assert code == 0, out
    from cas_glance.index import Index
    index = Index(cfg.index_dir, chunker_params=None)
    try:
        assert digest in index.zero_ref_chunks(float("inf"))
    finally:
        index.close()


def test_a_corrupted_blob_is_found_with_verify_blobs(two_images: Lab, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    victim = next(iter(two_images.store.list())).key
    corrupt(two_images.store, victim)
    assert _run(cfg, capsys)[0] == 0  # without --verify-blobs only presence is checked
    code, out = _run(cfg, capsys, verify_blobs=True)
    assert code == 1
    assert f"corrupt-blob: blob {victim}" in out


def test_the_cli_runs_fsck(two_images: Lab, cfg: Config) -> None:
    proc = subprocess.run([sys.executable, "-m", "cas_glance.cli", "fsck", "--data-dir", str(cfg.data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    # the CLI uses the default chunk sizes; fsck opens the index without a chunker check
    assert proc.returncode == 0, proc.stdout + proc.stderr
