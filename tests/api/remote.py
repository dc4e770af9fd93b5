"""A real `cas-glance serve` over the test Swift (S3 via s3api, or native Swift), for the
end-to-end tests and benchmarks: the glance-api.conf it is given, plain-HTTP helpers, and a
look at the bucket/container from outside (boto3 / swiftclient, not our stores).

The bucket or container is the one the `s3_store` / `swift_store` fixture made (a fresh empty
`*-cas-test`, removed with everything in it afterwards); the server gets it through the
operator's keys only (`default_store`, `s3_store_*`, `swift_store_*`).
"""
from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from tests.api.live import ROOT, LiveServer, start_server

BLOB_NAME = re.compile(r"^chunks/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


def write_config(path: Path, backend: str, swift_server: Any, name: str | None,
                 **cas: Any) -> Path:
    """A glance-api.conf style INI: [glance_store] for `backend` (file|s3|swift), [cas] extras."""
    lines = ["[DEFAULT]", "", "[glance_store]", f"default_store = {backend}"]
    if backend == "s3":
        lines += [f"s3_store_host = {swift_server.s3_endpoint}",
                  f"s3_store_access_key = {swift_server.access_key}",
                  f"s3_store_secret_key = {swift_server.secret_key}",
                  f"s3_store_bucket = {name}",
                  "s3_store_create_bucket_on_put = true",
                  "s3_store_bucket_url_format = path",
                  f"s3_store_region_name = {swift_server.region}"]
    elif backend == "swift":
        lines += [f"swift_store_auth_address = {swift_server.auth_url}",
                  f"swift_store_user = {swift_server.user}",
                  f"swift_store_key = {swift_server.key}",
                  f"swift_store_auth_version = {swift_server.auth_version}",
                  f"swift_store_container = {name}",
                  "swift_store_create_container_on_put = true"]
    lines += ["", "[cas]", *(f"{k} = {v}" for k, v in cas.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serve(tmp: Path, backend: str, swift_server: Any, name: str | None, **cas: Any) -> Iterator[LiveServer]:
    """`cas-glance serve --config F --data-dir D --port P` on `backend`; stopped on exit."""
    conf = write_config(tmp / f"glance-api-{backend}.conf", backend, swift_server, name, **cas)
    server = start_server(tmp / f"data-{backend}", "--config", str(conf))
    server.config = conf  # type: ignore[attr-defined]  # for `fsck --config`
    try:
        yield server
    finally:
        server.stop()


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`cas-glance ARGS` (as a subprocess from the checkout, like the server)."""
    return subprocess.run([sys.executable, "-m", "cas_glance.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def stats(server: LiveServer) -> dict[str, Any]:
    proc = cli("stats", "--data-dir", str(server.data_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fsck(server: LiveServer) -> subprocess.CompletedProcess[str]:
    return cli("fsck", "--config", str(server.config), "--data-dir", str(server.data_dir))  # type: ignore[attr-defined]


def blob_names(swift_server: Any, backend: str, name: str) -> list[str]:
    """Every object name in the bucket/container, listed by the plain client."""
    if backend == "s3":
        client = swift_server.s3_client()
        try:
            return [obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=name)
                    for obj in page.get("Contents", ())]
        finally:
            client.close()
    conn = swift_server.swift_connection()
    try:
        return [obj["name"] for obj in conn.get_container(name, full_listing=True)[1]]
    finally:
        conn.close()


# -- plain HTTP against the server ---------------------------------------------------------
def request(server: LiveServer, method: str, path: str, body: Any = None,
            timeout: float = 60) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def create_image(server: LiveServer, name: str = "e2e") -> str:
    status, body = request(server, "POST", "/v2/images",
                           {"name": name, "disk_format": "raw", "container_format": "bare"})
    assert status == 201, body
    return str(json.loads(body)["id"])


def show(server: LiveServer, image_id: str) -> dict[str, Any]:
    status, body = request(server, "GET", f"/v2/images/{image_id}")
    assert status == 200, body
    return dict(json.loads(body))


def put_chunked(server: LiveServer, image_id: str, pieces: Iterable[bytes],
                timeout: float = 300) -> tuple[int, bytes]:
    """PUT the image data with Transfer-Encoding: chunked (as glanceclient does)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.putrequest("PUT", f"/v2/images/{image_id}/file")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in pieces:
            if piece:
                conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def download(server: LiveServer, image_id: str, timeout: float = 300) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", f"/v2/images/{image_id}/file")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body[:500]
        return body
    finally:
        conn.close()
