"""`cas-glance serve` as a process: what it says first, and graceful shutdown on SIGTERM
with an upload in flight (the image must end `queued`, never `saving`)."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

from cas_glance.config import load_ini
from cas_glance.engine import Engine
from tests.api.live import start_server


def _create(url: str) -> str:
    req = urllib.request.Request(f"{url}/v2/images", method="POST", data=json.dumps(
        {"disk_format": "raw", "container_format": "bare"}).encode())
    with urllib.request.urlopen(req) as resp:
        return str(json.load(resp)["id"])


def _status(url: str, image_id: str) -> str:
    with urllib.request.urlopen(f"{url}/v2/images/{image_id}") as resp:
        return str(json.load(resp)["status"])


def _wait_for_ingest_to_settle(blobs: Path, timeout: float = 15) -> None:
    """Until the blob count stops growing: everything sent was chunked and stored, so the
    first stretch (8 MiB) has been pinned. The server is another process: this is the
    outside view that does not touch its index."""
    last, stable, deadline = -1, 0, time.monotonic() + timeout
    while stable < 4 and time.monotonic() < deadline:
        count = sum(1 for p in blobs.rglob("*") if p.is_file())
        stable = stable + 1 if count == last and count > 0 else 0
        last = count
        time.sleep(0.1)


def test_first_log_line_says_where_data_lives_which_store_and_that_auth_is_off(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        first = server.log().splitlines()[0]
        assert str(tmp_path / "data") in first and "file store" in first
        assert "auth is OFF" in first
    finally:
        assert server.stop() == 0


def test_sigterm_with_an_upload_in_flight_reverts_it_to_queued(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir, env={"CAS_GLANCE_SHUTDOWN_GRACE": "1"})
    image_id = _create(server.url)
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall((f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n").encode())
        piece = os.urandom(256 * 1024)
        for _ in range(40):  # 10 MiB: at least one pinned stretch (ingest.STRETCH, 8 MiB)
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        deadline = time.monotonic() + 10
        while _status(server.url, image_id) != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(server.url, image_id) == "saving"
        _wait_for_ingest_to_settle(data_dir / "blobs")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        took = time.monotonic() - t0
    finally:
        sock.close()
    assert took < 10, f"shutdown took {took:.1f} s"
    assert "reverting" in server.log()
    # Look at the index directly, before any restart: start-up recovery must not be what fixed it.
    engine = Engine.open(load_ini(None, data_dir=data_dir))
    try:
        record = engine.index.get_image(image_id)
        assert record["status"] == "queued" and record["size"] is None
        assert list(engine.index.manifest(image_id)) == []
        chunks = dict(engine.index.iter_chunks())
        assert chunks, "no chunk was ever pinned: the test did not exercise the release"
        assert all(c["refcount"] == 0 for c in chunks.values())
    finally:
        engine.close()
