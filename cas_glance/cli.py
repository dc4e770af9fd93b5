"""`cas-glance serve | gc | fsck | stats`: the command-line front.

Each subcommand only parses arguments and builds the frozen Config; the work lives in the
module that owns the concern (server, gc, fsck, stats), imported lazily so `--help` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Sequence

from cas_glance.config import Config, ConfigError, load_ini



def _run(command: str, cfg: Config, args: argparse.Namespace) -> int:
    """Hand the parsed command to the module that owns it (imported lazily)."""
    if command == "serve":
        from cas_glance.server import serve

        return serve(cfg)
    if command == "stats":
        from cas_glance.stats import main as stats_main

        return stats_main(args)
    module = importlib.import_module(f"cas_glance.{command}")  # gc, fsck: main(cfg, args)
    return int(module.main(cfg, args) or 0)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="INI file (glance-api.conf keys and [cas])")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="index and default blob store")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cas-glance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the Glance v2 image API")
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 9292)")

    gc = sub.add_parser("gc", help="collect unreferenced chunks (safe beside a running server)")
    _common(gc)
    gc.add_argument("--grace-seconds", type=int, help="only chunks unreferenced this long")
    gc.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    gc.add_argument("--no-sweep", action="store_true", help="skip the orphan blob sweep")

    fsck = sub.add_parser("fsck", help="check index and store consistency")
    _common(fsck)
    fsck.add_argument("--verify-blobs", action="store_true", help="decode every blob, check digests")
    fsck.add_argument("--repair", action="store_true", help="rebuild refcounts from manifests")

    stats = sub.add_parser("stats", help="images, logical and stored bytes, dedup ratio")
    _common(stats)
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg = load_ini(
            args.config,
            data_dir=args.data_dir,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
    except ConfigError as exc:
        print(f"cas-glance: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.data_dir is None:
        args.data_dir = cfg.data_dir  # stats reads it from args
    return int(_run(args.command, cfg, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
