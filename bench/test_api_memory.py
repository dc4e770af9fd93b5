"""Server memory while a 1 GiB image is uploaded and downloaded over loopback: it must stay
flat (bounded by buffers, not by the image size).

Run:  .venv/bin/pytest bench/test_api_memory.py -s
A real `cas-glance serve` process gets a 1 GiB non-dedupable image (streamed, chunked, never
held whole by the client), then the client downloads it while a thread samples the server's
RSS (psutil) every 20 ms. The download is verified (md5 of the stream == checksum) and the
figures are printed: RSS before, peak during, growth, and MiB/s both ways.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.api.live import start_server

SIZE = 1 << 30
PIECE = 1 << 20
MAX_GROWTH = 128 << 20  # reader prefetch (8 x 1 MiB) + socket buffers, far from 1 GiB


def _upload(port: int, image_id: str) -> tuple[str, float]:
    md5 = hashlib.md5()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.putrequest("PUT", f"/v2/images/{image_id}/file")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    t0 = time.monotonic()
    for _ in range(SIZE // PIECE):
        piece = os.urandom(PIECE)
        md5.update(piece)
        conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 204, resp.read()
    took = time.monotonic() - t0
    conn.close()
    return md5.hexdigest(), took


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self.samples += 1
            time.sleep(0.02)


@pytest.mark.slow
def test_download_of_1_gib_keeps_server_rss_flat(tmp_path: Path) -> None:
    # fsync=never: this measures memory, not durability, and batch fsync dominates ingest time
    conf = tmp_path / "bench.conf"
    conf.write_text("[cas]\nfsync = never\n")
    server = start_server(tmp_path / "data", "--config", str(conf))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        conn.request("POST", "/v2/images", body=json.dumps(
            {"name": "big", "disk_format": "raw", "container_format": "bare"}))
        image_id = json.loads(conn.getresponse().read())["id"]
        rss_idle = psutil.Process(server.proc.pid).memory_info().rss
        up_sampler = RssSampler(server.proc.pid)
        up_sampler.start()
        checksum, up_s = _upload(server.port, image_id)
        up_sampler.stop.set()
        up_sampler.join()
        rss_before = psutil.Process(server.proc.pid).memory_info().rss
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        md5 = hashlib.md5()
        t0 = time.monotonic()
        conn.request("GET", f"/v2/images/{image_id}/file")
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == SIZE
        assert resp.headers["Content-MD5"] == checksum
        got = 0
        while chunk := resp.read(PIECE):
            md5.update(chunk)
            got += len(chunk)
        down_s = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
        assert got == SIZE and md5.hexdigest() == checksum
        growth = sampler.peak - rss_before
        print(f"\n1 GiB: upload {SIZE / up_s / 2**20:.0f} MiB/s, download {SIZE / down_s / 2**20:.0f}"
              f" MiB/s (client md5 on the path); server RSS idle {rss_idle / 2**20:.0f} MiB, "
              f"peak during upload {up_sampler.peak / 2**20:.0f} MiB; before download "
              f"{rss_before / 2**20:.0f} MiB, peak during {sampler.peak / 2**20:.0f} MiB "
              f"(+{growth / 2**20:.0f} MiB, {sampler.samples} samples)")
        assert growth < MAX_GROWTH
        assert up_sampler.peak - rss_idle < 2 * MAX_GROWTH  # the upload streams too
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)  # 1 GiB of blobs: do not keep it
