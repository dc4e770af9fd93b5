"""Fixtures for the HTTP edge: an in-process app over a real engine, and a real server process.

* `cfg`: a Config on a fresh data dir in tmp_path (real LMDB index, filesystem store), with a
  small `image_size_cap` so the 413 path is cheap to reach.
* `client`: `aiohttp_client(create_app(cfg))`: a real TCP test server in this process; tests
  can reach the engine (`client.app[ENGINE]`) to look behind the API.
* `live_server` (session): `python -m cas_glance.cli serve` as a subprocess on a free port,
  waited for until `/versions` answers, terminated at the end. Real clients talk to it.
* `glance`: runs the real glanceclient CLI against the live server with HOME in tmp (its schema
  cache) and stdin closed (glanceclient uploads a non-TTY stdin otherwise).
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import importlib.util, types  # TEMP until domain/query lands
if importlib.util.find_spec("cas_glance.domain.query") is None:
    sys.modules["cas_glance.domain.query"] = types.ModuleType("cas_glance.domain.query")
from cas_glance.app import create_app
from cas_glance.config import Config, load_ini

ROOT = Path(__file__).resolve().parents[2]
GLANCE = str(Path(sys.executable).with_name("glance"))
SMALL_CAP = 4 << 20  # image_size_cap for the in-process app


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Run finalizers now, not at a random later allocation.

    A failed upload can leave an asyncio future whose exception nobody retrieved (an engine
    matter, reported). Its __del__ logs a traceback, and Python 3.11's traceback formatting
    calls ast.parse; if that __del__ fires inside pytest's own AST work (assertion rewriting),
    CPython 3.11.7 aborts with "AST constructor recursion depth mismatch". Collecting here
    keeps those finalizers inside the test that caused them."""
    yield
    gc.collect()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_ini(None, data_dir=tmp_path / "data", image_size_cap=SMALL_CAP, fsync="never")


@pytest.fixture
async def client(aiohttp_client, cfg):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(cfg))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> LiveServer:
    """Start `cas-glance serve` on a free port; return once `/versions` answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    cmd = [sys.executable, "-m", "cas_glance.cli", "serve", "--data-dir", str(data_dir),
           "--port", str(port), *extra]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    server = LiveServer(proc, port, data_dir, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cas-glance serve exited ({proc.returncode}):\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/versions", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"cas-glance serve did not answer within 30 s:\n{server.log()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live") / "data")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class GlanceCLI:
    server: LiveServer
    home: Path

    def run(self, *args: str, version: str | None = "2", check: bool = True,
            timeout: float = 120, close_stdin: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `glance ARGS`. stdin is /dev/null; `close_stdin` closes it instead (`<&-`),
        the only way to make image-create leave a queued image: it uploads a non-TTY stdin."""
        cmd = [GLANCE, "--os-image-url", self.server.url, "--os-auth-token", "x"]
        if version:
            cmd += ["--os-image-api-version", version]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["HOME"] = str(self.home)
        proc = subprocess.run([*cmd, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, env=env,
                              preexec_fn=(lambda: os.close(0)) if close_stdin else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"glance {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def glance(live_server: LiveServer, tmp_path: Path) -> GlanceCLI:
    home = tmp_path / "home"
    home.mkdir()
    return GlanceCLI(live_server, home)
