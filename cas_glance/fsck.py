"""`cas-glance fsck`: check that the index and the blob store agree, and name every problem.

Checks (each problem is one line naming its kind, the chunk and the image where known):
* refcounts: recomputed from every manifest of an image that is not `deleted` (pending_delete
  and saving images keep references) and compared with each chunk entry;
* every manifest entry names a chunk that has an entry, and that entry is not dying;
* the `gc` table lists exactly the entries at refcount 0 (the collector's work list);
* every live entry's blob is in the store (a dying entry's blob may or may not be: the
  collection that marked it finishes it);
* with --verify-blobs, every live blob decodes to its digest (blobfmt.decode: header, zstd,
  length, BLAKE3) and has the stored size the entry records.
Blobs no entry knows (orphans of a crash between put and pin) are counted, not errors: the
collector's sweep removes them after the grace period.
`--repair` rebuilds every refcount from the manifests in one index txn (so it is exact even
beside a running server), then checks again. Exit status: 0 clean, 1 problems remain.
The checks read in several short txns: run beside uploads, a count can move between reads, so
a refcount mismatch is re-read once before it is reported.
"""
from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cas_glance import blobfmt
from cas_glance.errors import CorruptBlob

log = logging.getLogger(__name__)


@dataclass
class FsckResult:
    problems: list[str] = field(default_factory=list)
    images: int = 0
    manifest_entries: int = 0
    chunks: int = 0
    blobs: int = 0
    orphans: int = 0
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems


def expected_refcounts(index: Any, result: FsckResult) -> Counter[str]:
    """How many manifest entries name each chunk, over images that are not deleted."""
    counts: Counter[str] = Counter()
    for rec in index.iter_images_all():
        result.images += 1
        if rec.get("status") == "deleted":
            continue
        for _offset, digest, _length in index.manifest(rec["id"]):
            result.manifest_entries += 1
            if digest is not None:
                counts[digest] += 1
    return counts


def _entry_problems(index: Any, counts: Counter[str], result: FsckResult) -> list[str]:
    entries = dict(index.iter_chunks())
    result.chunks = len(entries)
    in_gc = set(index.zero_ref_chunks(float("inf")))
    out = []
    for digest, n in counts.items():
        e = entries.get(digest)
        if e is None:
            out.append(f"missing-entry: chunk {digest} is named by {n} manifest entries but has no index entry")
        elif e["state"] == "dying":
            out.append(f"dying-referenced: chunk {digest} is dying but named by {n} manifest entries")
    for digest, e in entries.items():
        want = counts.get(digest, 0)
        if e["refcount"] != want:
            out.append(f"refcount: chunk {digest} has refcount {e['refcount']}, manifests name it {want} times")
        if (e["refcount"] == 0) != (digest in in_gc):
            where = "in" if digest in in_gc else "missing from"
            out.append(f"gc-list: chunk {digest} at refcount {e['refcount']} is {where} the gc table")
    return out


def _index_problems(index: Any, result: FsckResult) -> list[str]:
    """Manifest/entry problems; when there are any, read everything again and keep only
    those seen twice (an upload may pin between our reads of manifests and entries)."""
    first = _entry_problems(index, expected_refcounts(index, result), result)
    if not first:
        return first
    again = FsckResult()
    second = set(_entry_problems(index, expected_refcounts(index, again), again))
    return [p for p in first if p in second]


def _blob_problems(index: Any, store: Any, verify: bool, result: FsckResult) -> Iterator[str]:
    live = {d: e for d, e in index.iter_chunks() if e["state"] == "live"}
    seen = set()
    for info in store.list():
        result.blobs += 1
        e = live.get(info.key)
        if e is None:
            result.orphans += 1
            continue
        seen.add(info.key)
        if verify:
            yield from _verify(store, info.key, e)
    for digest in live.keys() - seen:
        if not store.exists(digest):  # listed before it was put: look again
            yield f"missing-blob: live chunk {digest} has no blob in the store"


def _verify(store: Any, digest: str, entry: dict[str, Any]) -> Iterator[str]:
    try:
        blob = store.get(digest)
        blobfmt.decode(blob, digest)
    except CorruptBlob as exc:
        yield f"corrupt-blob: {exc}"
        return
    except Exception as exc:  # noqa: BLE001  (the store failed to return it: named, not raised)
        yield f"unreadable-blob: {digest}: {exc}"
        return
    if entry["stored"] and len(blob) != entry["stored"]:
        yield f"size: blob {digest} is {len(blob)} bytes, its entry records {entry['stored']}"


def check(index: Any, store: Any, *, verify_blobs: bool = False) -> FsckResult:
    """Run every check; the result names each problem found."""
    result = FsckResult()
    result.problems += _index_problems(index, result)
    result.problems += list(_blob_problems(index, store, verify_blobs, result))
    return result


def repair(index: Any, store: Any, *, verify_blobs: bool = False) -> FsckResult:
    """Rebuild refcounts from manifests (one txn), then check again."""
    fixed = index.rebuild_refcounts()
    result = check(index, store, verify_blobs=verify_blobs)
    result.repaired = fixed
    return result


def _open(cfg: Any) -> tuple[Any, Any]:
    from cas_glance.index import Index
    from stores.registry import build_store

    index = Index(cfg.index_dir, chunker_params=None, map_size=cfg.index_map_size,
                  sync=cfg.fsync != "never")
    return index, build_store(cfg)


def main(cfg: Any, args: argparse.Namespace) -> int:
    """`cas-glance fsck [--verify-blobs] [--repair]`: print problems; 0 clean, 1 not."""
    index, store = _open(cfg)
    try:
        if args.repair:
            result = repair(index, store, verify_blobs=args.verify_blobs)
        else:
            result = check(index, store, verify_blobs=args.verify_blobs)
    finally:
        index.close()
        store.close()
    for problem in result.problems:
        print(problem)
    if args.repair:
        print(f"repaired {result.repaired} refcount(s)")
    print(f"fsck: {result.images} image(s), {result.manifest_entries} manifest entries, "
          f"{result.chunks} chunk entries, {result.blobs} blob(s) ({result.orphans} orphan(s)); "
          f"{len(result.problems)} problem(s)")
    return 0 if result.clean else 1
