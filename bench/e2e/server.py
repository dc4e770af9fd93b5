"""The server under test: a local ``cas-glance serve`` on a temp dir, or a given endpoint.

A local server is started as ``[sys.executable, "-m", "cas_glance.cli", "serve", ...]`` on a
fresh data dir and a free port, is waited for on ``GET /versions``, and is stopped (SIGTERM,
then SIGKILL) and its data dir removed afterwards. Each phase gets a fresh server, so stored
bytes and image counts are exactly what that phase put there. Its log goes to a file that
is shown when it dies.

Stored bytes come from ``cas-glance stats --data-dir D --json`` when it works, else from the
allocated size of the data dir (``du``); for a remote endpoint without ``--data-dir`` they
are unknown (None).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.e2e.glance import GlanceClient

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
_STOP_TIMEOUT = 20.0
_STATS_TIMEOUT = 120.0


@dataclass(frozen=True)
class StoreStats:
    """Bytes the server keeps for its images; ``source`` says how they were read."""

    stored_bytes: int
    logical_bytes: int | None
    source: str
    raw: dict[str, object] | None = None


@dataclass
class Target:
    """One endpoint to measure, plus what we can observe of it when it is local."""

    client: GlanceClient
    pid: int | None
    data_dir: Path | None
    local: bool  # started by us: cleanup is dropping the data dir, not DELETE calls

    def store_stats(self) -> StoreStats | None:
        """Stored (and logical) bytes now, or None when they cannot be known."""
        if self.data_dir is None:
            return None
        return cas_stats(self.data_dir) or du_stats(self.data_dir)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_int(data: dict[str, object], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def cas_stats(data_dir: Path) -> StoreStats | None:
    """``cas-glance stats --json`` of a cas-glance data dir, or None if that fails."""
    cmd = [sys.executable, "-m", "cas_glance.cli", "stats", "--data-dir", str(data_dir), "--json"]
    try:
        out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=_STATS_TIMEOUT, check=True).stdout
        data = json.loads(out)
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        log.debug("cas-glance stats failed: %s", exc)
        return None
    if not isinstance(data, dict):
        return None
    stored = _first_int(data, ("stored_bytes", "stored", "bytes_stored"))
    if stored is None:
        return None
    logical = _first_int(data, ("logical_bytes", "logical", "bytes_logical"))
    return StoreStats(stored_bytes=stored, logical_bytes=logical, source="cas-glance stats", raw=data)


def du_stats(data_dir: Path) -> StoreStats:
    """Allocated bytes of every file under ``data_dir`` (what ``du`` reports)."""
    total = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return StoreStats(stored_bytes=total, logical_bytes=None, source="du")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("server %d ignored SIGTERM for %.0fs; killing it", proc.pid, _STOP_TIMEOUT)
        proc.kill()
        proc.wait()


@contextlib.asynccontextmanager
async def local_server(client_factory: ClientFactory, work_dir: Path | None,
                       keep: bool = False, config: Path | None = None) -> AsyncIterator[Target]:
    """Start ``cas-glance serve`` on a fresh temp dir and free port; stop it afterwards.

    ``config`` is passed as ``--config`` (an INI with e.g. ``[cas] fsync = never``).
    """
    root = Path(tempfile.mkdtemp(prefix="cas-glance-bench-", dir=work_dir))
    data_dir = root / "data"
    data_dir.mkdir()
    log_path = root / "server.log"
    port = free_port()
    cmd = [sys.executable, "-m", "cas_glance.cli", "serve", "--data-dir", str(data_dir),
           "--port", str(port), "--host", "127.0.0.1"]
    if config is not None:
        cmd += ["--config", str(config.resolve())]
    with open(log_path, "wb") as log_file:  # noqa: ASYNC230 - before any timing starts
        proc = subprocess.Popen(  # noqa: ASYNC220 - spawning returns at once
            cmd, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    client = client_factory(f"http://127.0.0.1:{port}", None)
    try:
        try:
            await client.wait_ready(alive=lambda: proc.poll() is None)
        except Exception as exc:
            raise RuntimeError(f"cas-glance serve did not come up ({exc!r}); log:\n{_tail(log_path)}") from exc
        yield Target(client=client, pid=proc.pid, data_dir=data_dir, local=True)
        if proc.poll() is not None:
            raise RuntimeError(f"cas-glance serve exited with {proc.returncode}; log:\n{_tail(log_path)}")
    finally:
        _stop(proc)
        if keep:
            log.warning("kept server data dir %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def remote_server(client: GlanceClient, pid: int | None, data_dir: Path | None) -> AsyncIterator[Target]:
    """A server someone else runs; optionally its pid and data dir for resource figures."""
    await client.wait_ready(timeout=10.0)
    yield Target(client=client, pid=pid, data_dir=data_dir, local=False)


class ClientFactory:
    """Builds GlanceClients on the run's single aiohttp session."""

    def __init__(self, session: object, token: str | None):
        self.session = session
        self.token = token

    def __call__(self, endpoint: str, token: str | None) -> GlanceClient:
        return GlanceClient(self.session, endpoint, token or self.token)  # type: ignore[arg-type]
