"""`cas-glance stats`: what the store holds and how much deduplication and compression save.

Reads the index only (never the blob store), through short read txns, so it can run beside a
live server. Figures:
  images             records not deleted / pending_delete (by status)
  logical_bytes      sum of those images' sizes (what clients uploaded)
  unique_chunks      chunk entries with references; unique_bytes their raw length
  stored_bytes       encoded (compressed) size of those blobs
  dedup_ratio        logical / unique (zero regions count as deduplicated: they are never stored)
  compression_ratio  unique / stored
  reclaimable_*      chunks at refcount 0 that a collection would delete
"""
from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import Any

from cas_glance.config import ConfigError, load_ini
from cas_glance.errors import CasGlanceError
from cas_glance.index import Index

log = logging.getLogger(__name__)


def collect(index: Index) -> dict[str, Any]:
    """Compute the figures above from an open index."""
    records = index.list_images()
    by_status = Counter(str(r.get("status")) for r in records)
    logical = sum(int(r.get("size") or 0) for r in records)
    unique = unique_bytes = stored = dead = dead_bytes = dying = 0
    for _digest, entry in index.iter_chunks():
        if entry["state"] == "dying":
            dying += 1
        elif entry["refcount"] > 0:
            unique += 1
            unique_bytes += entry["length"]
            stored += entry["stored"]
        else:
            dead += 1
            dead_bytes += entry["stored"]
    return {
        "images": len(records), "images_by_status": dict(sorted(by_status.items())),
        "logical_bytes": logical, "unique_chunks": unique, "unique_bytes": unique_bytes,
        "stored_bytes": stored,
        "dedup_ratio": round(logical / unique_bytes, 3) if unique_bytes else None,
        "compression_ratio": round(unique_bytes / stored, 3) if stored else None,
        "total_ratio": round(logical / stored, 3) if stored else None,
        "reclaimable_chunks": dead, "reclaimable_bytes": dead_bytes, "dying_chunks": dying,
    }


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def render(s: dict[str, Any]) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in s["images_by_status"].items()) or "none"
    rows = [
        ("images", f"{s['images']} ({statuses})"),
        ("logical bytes", f"{s['logical_bytes']} ({_human(s['logical_bytes'])})"),
        ("unique chunks", f"{s['unique_chunks']} ({_human(s['unique_bytes'])} raw)"),
        ("stored bytes", f"{s['stored_bytes']} ({_human(s['stored_bytes'])})"),
        ("dedup ratio", _ratio(s["dedup_ratio"])),
        ("compression ratio", _ratio(s["compression_ratio"])),
        ("total ratio", _ratio(s["total_ratio"])),
        ("reclaimable", f"{s['reclaimable_chunks']} chunks, {_human(s['reclaimable_bytes'])}"),
    ]
    return "\n".join(f"{k:<18} {v}" for k, v in rows)


def main(args: Any) -> int:
    """Entry for `cas-glance stats` (args: data_dir, json, config). Returns the exit code."""
    try:
        cfg = load_ini(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    except ConfigError as exc:
        print(f"cas-glance stats: {exc}", file=sys.stderr)
        return 2
    if not (cfg.index_dir / "data.mdb").exists():
        print(f"cas-glance stats: no index at {cfg.index_dir}", file=sys.stderr)
        return 1
    try:
        index = Index(cfg.index_dir, chunker_params=None, map_size=cfg.index_map_size, sync=False)
    except (CasGlanceError, OSError) as exc:
        print(f"cas-glance stats: cannot open the index at {cfg.index_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        figures = collect(index)
    finally:
        index.close()
    print(json.dumps(figures, indent=2) if args.json else render(figures))
    return 0
