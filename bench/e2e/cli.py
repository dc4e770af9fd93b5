"""``python -m bench``: parse flags, run the selected phases, print and write the report.

Without ``--endpoint`` every phase gets its own freshly started local ``cas-glance serve``
(temp data dir, free port), so each phase's stored bytes and image counts are its own.
With ``--endpoint URL`` (``--token T`` is sent as X-Auth-Token) any Glance v2 server is
measured; ``--server-pid`` and ``--data-dir`` optionally give its resource and stored-bytes
figures. Exit status: 0 on success, 1 when a phase fails (status codes, verification), 2
for bad arguments.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import listing, report, series, transfer
from bench.e2e.data import RandomSource
from bench.e2e.glance import GlanceError, new_session
from bench.e2e.server import REPO_ROOT, ClientFactory, Target, local_server, remote_server
from bench.e2e.settings import FULL, PHASES, QUICK, Settings
from cas_glance.memtune import keep_freed_memory

log = logging.getLogger("bench")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size_arg(text: str) -> int:
    """Bytes from ``1G``, ``64MiB``, ``512k`` or a plain number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?B)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G, 64M)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def phases_arg(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    srv = p.add_argument_group("server")
    srv.add_argument("--endpoint", metavar="URL", help="measure this Glance v2 endpoint instead")
    srv.add_argument("--token", metavar="T", help="sent as X-Auth-Token")
    srv.add_argument("--server-pid", type=int, metavar="PID", help="remote server's pid (CPU/RSS)")
    srv.add_argument("--data-dir", type=Path, metavar="DIR", help="remote server's store (stored bytes)")
    srv.add_argument("--work-dir", type=Path, metavar="DIR", help="where local servers keep data")
    srv.add_argument("--keep", action="store_true", help="keep local servers' data dirs")
    srv.add_argument("--server-config", type=Path, metavar="INI", help="local server's --config")
    srv.add_argument("--no-keepalive", dest="keepalive", action="store_false",
                     help="a new connection per request (for uWSGI-served Glance)")
    run = p.add_argument_group("workload")
    run.add_argument("--quick", action="store_true", help="small sizes for CI smoke runs")
    run.add_argument("--phases", type=phases_arg, default=PHASES, help=f"subset of {','.join(PHASES)}")
    run.add_argument("--repeat", type=int, metavar="N", help="repeats, median reported (3)")
    run.add_argument("--size", type=size_arg, help="single-stream upload size (1G)")
    run.add_argument("--series", type=Path, metavar="DIR", dest="series_dir",
                     help="also ingest the files of DIR in name order")
    run.add_argument("--series-base", type=size_arg, metavar="SIZE", help="base image size (256M)")
    run.add_argument("--snapshots", type=int, metavar="N", help="snapshots after the base (5)")
    run.add_argument("--change", type=float, default=0.02, help="fraction changed per snapshot")
    run.add_argument("--seed", type=int, default=7, help="series seed")
    run.add_argument("--concurrency", type=int, metavar="N", help="concurrent uploads (16)")
    run.add_argument("--concurrent-size", type=size_arg, metavar="SIZE", help="each (32M)")
    run.add_argument("--list-images", type=int, metavar="N", help="images present (10000)")
    run.add_argument("--list-requests", type=int, dest="list_requests_small", metavar="N",
                     help="requests per round at limit=20 (250)")
    run.add_argument("--list-requests-large", type=int, metavar="N",
                     help="requests per round at limit=1000 (40)")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, dest="json_path", metavar="FILE", help="write all results")
    out.add_argument("--plot", type=Path, dest="plot_path", metavar="FILE.png", help="series chart")
    out.add_argument("--markdown", type=Path, metavar="FILE", help="results table as Markdown")
    out.add_argument("--from-json", type=Path, metavar="FILE.json",
                     help="measure nothing: print (and re-write) the report of an earlier run")
    out.add_argument("--baseline", type=Path, metavar="FILE.json",
                     help="another run's --json (e.g. OpenStack Glance) shown beside each figure")
    out.add_argument("-v", "--verbose", action="store_true")
    return p


def resolve(args: argparse.Namespace) -> Settings:
    """Quick or full defaults, overridden by every flag given explicitly."""
    base = dict(QUICK if args.quick else FULL)
    given = {k: v for k, v in vars(args).items()
             if k in Settings.__dataclass_fields__ and v is not None}
    settings = Settings(**{**base, **given})
    if settings.repeat < 1 or settings.concurrency < 1 or settings.size < 1:
        raise ValueError("--repeat, --concurrency and --size must be positive")
    if not settings.local and settings.server_pid is None and settings.data_dir is None:
        log.info("remote endpoint: server CPU/RSS and stored bytes will be 'unknown'")
    return settings


@contextlib.asynccontextmanager
async def open_target(settings: Settings, factory: ClientFactory) -> AsyncIterator[Target]:
    """A fresh local server, or the given endpoint."""
    if settings.local:
        async with local_server(factory, settings.work_dir, settings.keep,
                                settings.server_config) as target:
            yield target
    else:
        assert settings.endpoint is not None
        client = factory(settings.endpoint, settings.token)
        async with remote_server(client, settings.server_pid, settings.data_dir) as target:
            yield target


async def run_phases(settings: Settings) -> dict[str, Any]:
    """Every selected phase, each on its own target; the merged results."""
    results: dict[str, Any] = {}
    src = RandomSource()
    async with new_session(keepalive=settings.keepalive) as session:
        factory = ClientFactory(session, settings.token)
        for phase in settings.phases:
            async with open_target(settings, factory) as target:
                if phase == "throughput":
                    results.update(await transfer.throughput(target, settings, src))
                elif phase == "concurrent":
                    results.update(await transfer.concurrent(target, settings, src))
                elif phase == "listing":
                    results.update(await listing.listing(target, settings))
                else:
                    results.update(await series.synthetic_series(target, settings))
            if phase == "series" and settings.series_dir is not None:
                async with open_target(settings, factory) as target:
                    results.update(await series.directory_ingest(target, settings.series_dir))
    return results


def _git_rev() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def meta(settings: Settings, seconds: float) -> dict[str, Any]:
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "server": settings.endpoint or f"local cas-glance ({_git_rev()})",
            "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "duration_s": round(seconds, 1), "quick": settings.quick,
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in asdict(replace(settings, token=None)).items()}}


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _check_plot_possible(settings: Settings) -> None:
    if settings.plot_path is not None:
        from bench.e2e.plot import _pyplot

        _pyplot()


def load_document(path: Path | None) -> dict[str, Any] | None:
    """A previous run's JSON document, checked before anything is measured."""
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not (isinstance(document, dict) and isinstance(document.get("figures"), list)
            and "settings" in document.get("meta", {})):
        raise ValueError(f"{path}: not a `python -m bench --json` document")
    return document


def settings_of(document: dict[str, Any], args: argparse.Namespace) -> Settings:
    """The settings an earlier run recorded, with this invocation's outputs."""
    saved = {k: v for k, v in document["meta"]["settings"].items() if k in Settings.__dataclass_fields__}
    saved["phases"] = tuple(saved.get("phases", PHASES))
    return replace(Settings(**saved), json_path=args.json_path, plot_path=args.plot_path)


_COMPARED = ("size", "repeat", "series_base", "snapshots", "concurrency", "concurrent_size",
             "list_images", "list_requests_small", "list_requests_large")


def _setting_differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Workload settings in which a baseline run differs from this one."""
    return [f"{key}={theirs.get(key)} (this run: {ours.get(key)})"
            for key in _COMPARED if theirs.get(key) != ours.get(key)]


def emit(settings: Settings, results: dict[str, Any], info: dict[str, Any], args: argparse.Namespace,
         baseline: dict[str, Any] | None) -> None:
    """Table on stdout; JSON, Markdown and the plot where asked."""
    table_rows = report.rows(results, settings)
    if baseline is not None:
        report.add_baseline(table_rows, baseline)
        print(f"\nbaseline: {baseline['meta']['server']}, {baseline['meta']['date']}")
        for note in _setting_differences(info["settings"], baseline["meta"]["settings"]):
            print(f"  note: baseline ran with {note}")
    mode = "QUICK run (targets not judged)" if settings.quick else f"median of {settings.repeat}"
    print(f"\ncas-glance end-to-end benchmark — {info['server']}, {info['date']}, {mode}, "
          f"load average {info['loadavg_at_end'][0]} on {info['cpus']} CPUs")
    print(report.table(table_rows))
    if settings.json_path:
        report.write_json(settings.json_path, info, results, table_rows)
    if args.markdown:
        args.markdown.write_text(report.markdown(table_rows) + "\n")
    if settings.plot_path:
        from bench.e2e.plot import plot_series

        plot_series(results, settings.plot_path, f"{info['server']} — {info['date']}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[bench] %(levelname)s %(message)s")
    try:
        settings = resolve(args)
        _check_plot_possible(settings)
        baseline = load_document(args.baseline)
        earlier = load_document(args.from_json)
    except (ValueError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if earlier is not None:
        emit(settings_of(earlier, args), earlier["results"], earlier["meta"], args, baseline)
        return 0
    keep_freed_memory()  # the client's allocations should cost the machine as little as the server's
    start = time.perf_counter()
    try:
        with _event_loop_runner() as runner:
            results = runner.run(run_phases(settings))
    except (GlanceError, RuntimeError, OSError, aiohttp.ClientError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    emit(settings, results, meta(settings, time.perf_counter() - start), args, baseline)
    return 0
