"""End to end over HTTP with `default_store = s3` and `default_store = swift` (issue #5).

A real `cas-glance serve --config F` (F: glance-api.conf `[glance_store]` keys pointing at the
session's real Swift, through s3api or the native API), real glanceclient, and a look at the
bucket/container with the plain client (boto3 / swiftclient), never through our stores:
* `glance image-create --file` → `glance image-download` is byte-exact; every object is named
  `chunks/ab/cd/<64 hex>`, and there are exactly as many as the index has unique non-zero
  chunks (`cas-glance stats --json`); a second identical image adds no object;
* Swift dies in the middle of an upload (the client still sending): the client gets a
  Glance-style 500 (not 503: the body was partly consumed) within seconds, the image is back
  in `queued`, `cas-glance fsck` is clean (no index entry names a missing object); with Swift
  back the same upload to the same image succeeds and downloads byte-exact.
"""
from __future__ import annotations

import http.client
import os
import random
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import GlanceCLI
from tests.api.helpers import table_field
from tests.api.live import LiveServer
from tests.api.remote import (
    BLOB_NAME,
    blob_names,
    create_image,
    download,
    fsck,
    put_chunked,
    serve,
    show,
    stats,
)

pytestmark = pytest.mark.swift

KiB, MiB = 1 << 10, 1 << 20
# Seeded, so the chunk boundaries (and the dedup bound below) are the same on every run.
_RNG = random.Random(20261126)
_A, _B = _RNG.randbytes(MiB), _RNG.randbytes(512 * KiB)
# ~3.6 MiB: a repeated MiB, zero runs (never stored), an odd tail
IMAGE = _A + bytes(768 * KiB) + _A + _B + bytes(256 * KiB) + _RNG.randbytes(100_003)


def _bucket(backend: str, store: Any) -> str:
    return str(store.bucket if backend == "s3" else store.container)


@pytest.fixture(params=["s3", "swift"])
def remote(request: pytest.FixtureRequest, swift_server: Any, tmp_path: Path) -> Any:
    """(backend, bucket/container name, live server on it). The fixture store made the fresh
    `*-cas-test` bucket and removes it with its objects after the server stopped."""
    backend = request.param
    name = _bucket(backend, request.getfixturevalue(f"{backend}_store"))
    with serve(tmp_path, backend, swift_server, name, fsync="never") as server:
        yield backend, name, server


def _blobs(swift_server: Any, backend: str, name: str) -> list[str]:
    names = blob_names(swift_server, backend, name)
    bad = [n for n in names if not (m := BLOB_NAME.match(n)) or m[1] + m[2] != m[3][:4]]
    assert not bad, f"objects outside chunks/ab/cd/<abcd...>: {bad[:5]}"
    return names


def test_glanceclient_roundtrip_stores_each_unique_chunk_once(remote, swift_server, tmp_path):
    backend, name, server = remote
    home = tmp_path / "home"
    home.mkdir()
    glance = GlanceCLI(server, home)
    src = tmp_path / "image.raw"
    src.write_bytes(IMAGE)

    out = glance.run("image-create", "--name", f"e2e-{backend}", "--disk-format", "raw",
                     "--container-format", "bare", "--file", str(src)).stdout
    first = table_field(out, "id")
    assert table_field(out, "status") == "active" and table_field(out, "size") == str(len(IMAGE))
    target = tmp_path / "out.raw"
    glance.run("image-download", "--file", str(target), first)  # glanceclient checks the hash
    assert target.read_bytes() == IMAGE

    objects = _blobs(swift_server, backend, name)
    figures = stats(server)
    assert figures["images"] == 1 and figures["logical_bytes"] == len(IMAGE)
    assert len(objects) == figures["unique_chunks"] > 0
    # the repeated MiB and the zero runs are not stored again
    assert figures["unique_bytes"] < len(IMAGE) - MiB

    second = create_image(server, f"e2e-{backend}-again")  # the same bytes, another image
    status, body = put_chunked(server, second, [IMAGE[:MiB], IMAGE[MiB:]])
    assert status == 204, body[:500]
    assert sorted(_blobs(swift_server, backend, name)) == sorted(objects)  # nothing new
    again = stats(server)
    assert again["images"] == 2 and again["logical_bytes"] == 2 * len(IMAGE)
    assert again["unique_chunks"] == figures["unique_chunks"]
    assert download(server, second) == IMAGE
    # every live index entry has its object and no object lacks an entry: the same set
    proc = fsck(server)
    assert proc.returncode == 0 and f"{len(objects)} blob(s) (0 orphan(s))" in proc.stdout, \
        proc.stdout + proc.stderr


# -- Swift dies mid-upload --------------------------------------------------------------------
class _SlowUpload:
    """A chunked PUT sent piece by piece from a non-blocking socket, so several uploads can be
    driven from one loop and keep sending while Swift goes down."""

    def __init__(self, server: LiveServer, image_id: str, data: bytes, piece: int = 64 * KiB) -> None:
        self.data, self.piece, self.offset = data, piece, 0
        self.pending, self.ended, self.answered_at = b"", False, 0.0
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock.sendall(f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/octet-stream\r\nAccept: */*\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n".encode())
        self.sock.setblocking(False)

    def step(self) -> None:
        """Send one more piece if the socket takes it; note when the answer starts arriving."""
        if self.answered_at:
            return
        readable, writable, _ = select.select([self.sock], [self.sock], [], 0)
        if readable:
            self.answered_at = time.monotonic()  # the answer (or a close) is in the socket
            return
        if not writable or (self.ended and not self.pending):
            return
        if not self.pending and self.offset < len(self.data):
            part = self.data[self.offset:self.offset + self.piece]
            self.offset += len(part)
            self.pending = b"%x\r\n" % len(part) + part + b"\r\n"
        elif not self.pending:
            self.pending, self.ended = b"0\r\n\r\n", True
        try:
            self.pending = self.pending[self.sock.send(self.pending):]
        except (BlockingIOError, InterruptedError):
            pass
        except (BrokenPipeError, ConnectionResetError):  # the server gave up on the body
            self.answered_at = time.monotonic()

    def answer(self, timeout: float) -> tuple[int, bytes]:
        self.sock.setblocking(True)
        self.sock.settimeout(timeout)
        try:
            resp = http.client.HTTPResponse(self.sock)
            resp.begin()
            return resp.status, resp.read()
        finally:
            self.sock.close()


def _through_outage(uploads: list[_SlowUpload], swift_server: Any, stop_after: int,
                    pause: float = 0.01, deadline: float = 60) -> float:
    """Drive the uploads; stop Swift once each has sent `stop_after` bytes; keep sending until
    every server answered. Returns when Swift was stopped (monotonic)."""
    stopped_at, t0 = 0.0, time.monotonic()
    while not all(u.answered_at for u in uploads):
        if time.monotonic() - t0 > deadline:
            raise AssertionError(f"no answer {deadline:.0f} s after the uploads began (sent "
                                 f"{[u.offset for u in uploads]}, Swift stopped: {bool(stopped_at)})")
        for u in uploads:
            u.step()
        if not stopped_at and all(u.offset >= stop_after for u in uploads):
            assert not any(u.answered_at for u in uploads), "answered before Swift was stopped"
            swift_server.stop()
            stopped_at = time.monotonic()
        time.sleep(pause)
    assert stopped_at, f"the servers answered before Swift was stopped (sent {[u.offset for u in uploads]})"
    return stopped_at


def test_swift_dies_mid_upload_then_the_same_upload_succeeds(swift_server, s3_store, swift_store,
                                                              tmp_path):
    """Both backends through one outage (a Swift restart costs seconds on a busy box)."""
    data = os.urandom(6 * MiB)  # every chunk new: puts keep coming after the stop
    with serve(tmp_path, "s3", swift_server, s3_store.bucket, fsync="never") as s3, \
            serve(tmp_path, "swift", swift_server, swift_store.container, fsync="never") as sw:
        servers = {"s3": (s3, s3_store.bucket), "swift": (sw, swift_store.container)}
        images = {b: create_image(srv, f"fault-{b}") for b, (srv, _) in servers.items()}
        uploads = {b: _SlowUpload(srv, images[b], data) for b, (srv, _) in servers.items()}
        try:
            stopped_at = _through_outage(list(uploads.values()), swift_server, stop_after=2 * MiB)
        finally:
            down = time.monotonic()
            swift_server.ensure_running()  # even when the test fails
            back = time.monotonic() - down
        for backend, upload in uploads.items():
            status, body = upload.answer(timeout=30)
            print(f"\n{backend}: {status} {upload.answered_at - stopped_at:.1f}s after Swift stopped, "
                  f"{upload.offset} of {len(data)} bytes sent; Swift back after {back:.1f}s")
            # a Glance-style 500: the body was partly consumed, so never the retry-inviting 503
            assert status == 500, body[:500]
            assert b"<h1>500 Internal Server Error</h1>" in body and b"store" in body, body[:500]
            assert upload.answered_at - stopped_at < 60

        # each backend's checks in its own thread: mostly waiting on subprocesses and Swift
        with ThreadPoolExecutor(len(servers)) as pool:
            for done in [pool.submit(_recovered, swift_server, b, srv, name, images[b], data)
                         for b, (srv, name) in servers.items()]:
                done.result()


def _recovered(swift_server: Any, backend: str, server: LiveServer, name: str, image_id: str,
               data: bytes) -> None:
    """After the failed upload: queued, fsck clean, no references; then the retry works."""
    assert show(server, image_id)["status"] == "queued"
    proc = fsck(server)  # every live chunk entry has its object: none names a missing one
    assert proc.returncode == 0, f"{backend}: {proc.stdout}{proc.stderr}"
    figures = stats(server)
    assert figures["images_by_status"] == {"queued": 1} and figures["unique_chunks"] == 0

    status, body = put_chunked(server, image_id, (data[o:o + MiB] for o in range(0, len(data), MiB)))
    assert status == 204, f"{backend}: {body[:500]!r}"
    record = show(server, image_id)
    assert record["status"] == "active" and record["size"] == len(data)
    assert download(server, image_id) == data
    proc = fsck(server)
    assert proc.returncode == 0, f"{backend}: {proc.stdout}{proc.stderr}"
    assert len(_blobs(swift_server, backend, name)) >= stats(server)["unique_chunks"] > 0
