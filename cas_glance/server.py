"""`cas-glance serve`: run the app until SIGTERM/SIGINT, then shut down gracefully.

Invariants:
* uvloop is used when installed (it is optional: the stock loop behaves the same, slower);
* the first log line names the data directory, the store and that auth is off, so an
  operator never runs an unauthenticated image service without being told;
* on SIGTERM/SIGINT: stop accepting connections, give in-flight requests SHUTDOWN_GRACE
  seconds, then cancel them. A cancelled upload reverts its image to `queued` (the engine runs
  the revert through cancellation) before the engine closes, so no image is left `saving`;
  a crash that skips all this is repaired at start-up (`cas_glance.gc.recover_saving`);
* the periodic collector (`gc.collector_ctx`, every `wakeup_time` s) runs inside the daemon.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from cas_glance import gc, memtune
from cas_glance.api.keys import CONFIG, ENGINE
from cas_glance.app import create_app
from cas_glance.config import Config
from cas_glance.errors import CasGlanceError

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get after SIGTERM before cancellation
# Not a config key (config.py is frozen and shared): an environment override for tests and
# for operators whose systemd TimeoutStopSec is shorter than the default.
GRACE_ENV = "CAS_GLANCE_SHUTDOWN_GRACE"
# One line per request (logger aiohttp.access): client, request line, status, bytes sent,
# seconds, and the request id a client or operator quotes when something went wrong.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf %{x-openstack-request-id}o'


def _describe(cfg: Config) -> str:
    if cfg.default_store == "file":
        store = f"file store at {cfg.blob_dir}"
    elif cfg.default_store == "s3":
        store = f"s3 store {cfg.s3.host or '(default endpoint)'} bucket {cfg.s3.bucket}"
    else:
        store = f"swift store {cfg.swift.auth_address} container {cfg.swift.container}"
    return (
        f"cas-glance: data in {cfg.data_dir} (index {cfg.index_dir}), {store}; "
        f"auth is OFF ({cfg.auth_strategy}: every caller is admin unless it sends trusted "
        f"X-Roles/X-Project-Id headers)"
    )


async def run(cfg: Config, *, stop: asyncio.Event | None = None,
              shutdown_grace: float = SHUTDOWN_GRACE) -> None:
    """Serve until `stop` is set (or a signal arrives), then shut down gracefully."""
    log.info(_describe(cfg))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(cfg)
    # The periodic collector (Glance's scrubber daemon) belongs to the daemon, not to every
    # app: appended after the engine's ctx, it stops before the engine closes.
    app.cleanup_ctx.append(gc.collector_ctx(ENGINE, CONFIG))
    runner = web.AppRunner(app, access_log_format=ACCESS_LOG_FORMAT, shutdown_timeout=shutdown_grace)
    await runner.setup()  # opens the engine (cleanup_ctx) and runs start-up recovery
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True)
        await site.start()
        log.info("cas-glance: serving the Glance v2 API on http://%s:%d", cfg.host, cfg.port)
        await stop.wait()
        log.info("cas-glance: shutting down (in-flight requests get %.0f s)", shutdown_grace)
    finally:
        # Stops listening, waits for in-flight handlers, cancels the rest, then closes the engine.
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("cas-glance: stopped")


def serve(cfg: Config) -> int:
    """Entry point for `cas-glance serve`; returns the process exit status."""
    grace = float(os.environ.get(GRACE_ENV) or SHUTDOWN_GRACE)
    memtune.keep_freed_memory()
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a declared dependency on Linux
            asyncio.run(run(cfg, shutdown_grace=grace))
        else:
            uvloop.run(run(cfg, shutdown_grace=grace))
    except (OSError, CasGlanceError) as exc:  # port taken, data dir unusable, index mismatch
        log.error("cas-glance: cannot serve on %s:%d: %s", cfg.host, cfg.port, exc)
        return 1
    return 0
