"""Fixtures for the HTTP edge: an in-process app over a real engine, and a real server process.

* `cfg`: a Config on a fresh data dir in tmp_path (real LMDB index, filesystem store), with a
  small `image_size_cap` so the 413 path is cheap to reach.
* `client`: `aiohttp_client(create_app(cfg))`: a real TCP test server in this process; tests
  can reach the engine (`client.app[ENGINE]`) to look behind the API.
* `live_server` (session): `python -m cas_glance.cli serve` as a subprocess on a free port
  (tests/api/live.py), waited for until `/versions` answers, terminated at the end. Real
  clients talk to it.
* `glance`: runs the real glanceclient CLI against the live server with HOME in tmp (its schema
  cache) and stdin closed (glanceclient uploads a non-TTY stdin otherwise).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cas_glance.app import create_app
from cas_glance.config import Config, load_ini
from tests.api.live import LiveServer, start_server

GLANCE = str(Path(sys.executable).with_name("glance"))
SMALL_CAP = 4 << 20  # image_size_cap for the in-process app


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_ini(None, data_dir=tmp_path / "data", image_size_cap=SMALL_CAP, fsync="never")


@pytest.fixture
async def client(aiohttp_client, cfg):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(cfg))


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
                              preexec_fn=(lambda: os.close(0)) if close_stdin else None,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"glance {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def glance(live_server: LiveServer, tmp_path: Path) -> GlanceCLI:
    home = tmp_path / "home"
    home.mkdir()
    return GlanceCLI(live_server, home)
