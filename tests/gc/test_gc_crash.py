"""kill -9 of a real `cas-glance serve` in the middle of a streamed upload, then restart:
the image is back to `queued` (start-up recovery), `cas-glance fsck` is clean, and one
`cas-glance gc --grace-seconds 0` (run beside the restarted server) brings the store back to
exactly the blobs and bytes it held before the upload."""
from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.pack import PackStore
from tests.gc.lab import stored

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cas_glance.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Server:
    def __init__(self, data: Path) -> None:
        self.data, self.port = data, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.data.parent / f"serve-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cas_glance.cli", "serve", "--data-dir", str(self.data),
             "--port", str(self.port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/v2/images", timeout=1).read()
                return
            except OSError:
                assert self.proc.poll() is None, "server exited at start-up"
                time.sleep(0.1)
        raise AssertionError("server did not come up")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json") -> dict:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def create(self) -> str:
        return self.call("POST", "/v2/images", json.dumps(
            {"name": "crash", "disk_format": "raw", "container_format": "bare"}).encode())["id"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _stream_slowly(srv: Server, iid: str, data: bytes, until: float) -> socket.socket:
    """PUT data with a chunked body, then keep the request open (sending nothing more)."""
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall((f"PUT /v2/images/{iid}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
    piece = 256 * 1024
    for i in range(0, len(data), piece):
        part = data[i:i + piece]
        sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        if time.monotonic() > until:
            break
    return sock


@pytest.mark.slow
def test_kill_9_mid_upload_then_restart_recovers_and_one_gc_restores_the_store(server: Server) -> None:
    rnd = random.Random(5)
    base = rnd.randbytes(6 << 20)
    first = server.create()
    server.call("PUT", f"/v2/images/{first}/file", base, "application/octet-stream")
    blobs = PackStore(server.data / "blobs", "never")  # the server's default layout
    before = stored(blobs)
    # second image: shares its first half with the first, then 24 MiB of new data (3 pins)
    victim = server.create()
    sock = _stream_slowly(server, victim, base[: 3 << 20] + rnd.randbytes(24 << 20), time.monotonic() + 30)
    time.sleep(1.0)  # let the server put and pin what it has
    assert server.call("GET", f"/v2/images/{victim}")["status"] == "saving"
    mid = stored(blobs)
    assert mid[0] > before[0]  # the upload had stored (and pinned) new chunks
    server.kill9()
    sock.close()

    server.start()  # start-up recovery reverts the interrupted upload
    assert server.call("GET", f"/v2/images/{victim}")["status"] == "queued"
    assert server.call("GET", f"/v2/images/{first}")["status"] == "active"
    fsck = _cli("fsck", "--data-dir", str(server.data), "--verify-blobs")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    gc = _cli("gc", "--data-dir", str(server.data), "--grace-seconds", "0")  # beside the server
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert stored(blobs) == before, gc.stdout
    with urllib.request.urlopen(f"{server.url}/v2/images/{first}/file", timeout=60) as resp:
        assert resp.read() == base
    assert _cli("fsck", "--data-dir", str(server.data)).returncode == 0
