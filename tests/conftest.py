"""Session-wide fixtures: one real OpenStack Swift (native API + S3 via s3api) on 127.0.0.1.

`swift_server` starts Swift with the project's own `tests/swift_saio/start-saio.sh` in a fresh
directory under /tmp on 4 free consecutive ports, once per session, and purges it at the end.
When `CAS_TEST_SWIFT_AUTH` or `CAS_TEST_S3_URL` is set, the tests use that external endpoint
instead and start nothing (credentials: `CAS_TEST_SWIFT_USER/_KEY/_AUTH_VERSION`,
`CAS_TEST_S3_ACCESS_KEY/_SECRET_KEY/_REGION`; an existing empty `*-cas-test` bucket or
container to use instead of a fresh one: `CAS_TEST_S3_BUCKET`, `CAS_TEST_SWIFT_CONTAINER`).
`CAS_TEST_SWIFT_DIR` moves the managed server's directory off /tmp (it needs user xattrs).

A server that cannot be had is a skip on a workstation and a failure (with the log tail) when
`CAS_TEST_REQUIRE=1` or `CI=true`: a real-service suite must never skip silently in CI.

`s3_store` / `swift_store` yield a store on a fresh, uniquely named `*-cas-test` bucket or
container, refuse any bucket not named so or not empty (destructive tests), and remove it
afterwards. Fault tests use `swift_server.stop()` / `.start()`: same data, same port.
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # the project is imported from the checkout, not installed
    sys.path.insert(0, str(_ROOT))

from cas_glance.config import S3Config, SwiftConfig  # noqa: E402

SAIO = Path(__file__).resolve().parent / "swift_saio"
TEST_SUFFIX = "-cas-test"


def required() -> bool:
    """True where a missing real server must fail the run (CI), not skip."""
    return os.environ.get("CAS_TEST_REQUIRE") == "1" or os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port_block(n: int = 4) -> int:
    """A base port with n consecutive free ports (the script re-checks; we retry on a race)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Swift binds
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports found on 127.0.0.1")


@dataclass
class SwiftServer:
    """Where the test Swift lives, its credentials, and (when we started it) control."""

    auth_url: str
    user: str
    key: str
    s3_endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    auth_version: str = "1"
    base: Path | None = None  # None: an external server we must not stop
    port: int = 0
    start_seconds: float = 0.0
    running: bool = field(default=True, repr=False)

    # -- control (managed servers only) --------------------------------------------------
    def _script(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SAIO / name), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def _managed(self) -> Path:
        if self.base is None:
            pytest.skip("the Swift server is external: tests cannot stop or start it")
        return self.base

    def stop(self) -> None:
        """Stop every Swift server process (SIGTERM); data and ports stay reserved for start()."""
        base = self._managed()
        self.running = False
        proc = self._script("stop-saio.sh", str(base))
        assert proc.returncode == 0, proc.stderr

    def start(self) -> float:
        """(Re)start on the same port and data; returns seconds until ready."""
        base = self._managed()
        t0 = time.monotonic()
        proc = self._script("start-saio.sh", str(base), str(self.port))
        if proc.returncode != 0:
            raise RuntimeError(f"start-saio.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        self.running = True
        return time.monotonic() - t0

    def restart_later(self, delay: float = 0.5) -> "Restart":
        """Start the stopped server again in the background after `delay` seconds."""
        self._managed()
        restart = Restart(self, delay)
        restart.start()
        return restart

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def log_tail(self, lines: int = 30) -> str:
        if self.base is None:
            return ""
        out = []
        for log in sorted((self.base / "log").glob("*.log")):
            out.append(f"---- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    # -- clients -------------------------------------------------------------------------
    def swift_config(self, container: str, **changes: Any) -> SwiftConfig:
        cfg = SwiftConfig(auth_address=self.auth_url, user=self.user, key=self.key,
                          auth_version=self.auth_version, container=container,
                          create_container_on_put=True)
        return replace(cfg, **changes)

    def s3_config(self, bucket: str, **changes: Any) -> S3Config:
        cfg = S3Config(host=self.s3_endpoint, access_key=self.access_key,
                       secret_key=self.secret_key, bucket=bucket, create_bucket_on_put=True,
                       bucket_url_format="path", region_name=self.region)
        return replace(cfg, **changes)

    def s3_client(self) -> Any:
        """A plain boto3 client (for looking behind the store's back, and the benchmark)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.s3_endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1}, max_pool_connections=32))

    def swift_connection(self) -> Any:
        import swiftclient

        return swiftclient.Connection(authurl=self.auth_url, user=self.user, key=self.key,
                                      auth_version=self.auth_version, retries=0)


class Restart(threading.Thread):
    """A background start of a stopped server; `sleep` is a RetryingStore sleep hook that
    turns a failed restart into a test failure instead of retrying forever."""

    def __init__(self, server: SwiftServer, delay: float) -> None:
        super().__init__(name="swift-restart", daemon=True)
        self.server, self.delay = server, delay
        self.error: BaseException | None = None
        self.ready_at = 0.0

    def run(self) -> None:
        time.sleep(self.delay)
        try:
            self.server.start()
            self.ready_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported through sleep()
            self.error = exc

    def sleep(self, seconds: float) -> None:
        if self.error is not None:
            raise AssertionError(f"Swift did not restart: {self.error}") from self.error
        if self.ready_at and time.monotonic() - self.ready_at > 30:
            raise AssertionError("Swift is back for 30 s, but the store still fails")
        time.sleep(seconds)


def _external() -> SwiftServer | None:
    env = os.environ.get
    if not (env("CAS_TEST_SWIFT_AUTH") or env("CAS_TEST_S3_URL")):
        return None
    return SwiftServer(
        auth_url=env("CAS_TEST_SWIFT_AUTH", ""), user=env("CAS_TEST_SWIFT_USER", "test:tester"),
        key=env("CAS_TEST_SWIFT_KEY", "testing"), auth_version=env("CAS_TEST_SWIFT_AUTH_VERSION", "1"),
        s3_endpoint=env("CAS_TEST_S3_URL", ""), access_key=env("CAS_TEST_S3_ACCESS_KEY", "test:tester"),
        secret_key=env("CAS_TEST_S3_SECRET_KEY", "testing"), region=env("CAS_TEST_S3_REGION", "us-east-1"))


def _start_managed() -> SwiftServer:
    # the data dir needs user xattrs (ext4, xfs, btrfs; tmpfs on Linux >= 6.6)
    base = Path(tempfile.mkdtemp(prefix="cas-saio-", dir=os.environ.get("CAS_TEST_SWIFT_DIR", "/tmp")))
    err = ""
    for _attempt in range(3):  # a port taken between our probe and the script's: try another
        port = _free_port_block()
        server = SwiftServer(
            auth_url=f"http://127.0.0.1:{port}/auth/v1.0", user="test:tester", key="testing",
            s3_endpoint=f"http://127.0.0.1:{port}", access_key="test:tester",
            secret_key="testing", base=base, port=port)
        try:
            server.start_seconds = server.start()
            return server
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            err = str(exc)
            if "is in use" not in err:
                break
    tail = SwiftServer("", "", "", "", "", "", base=base).log_tail()
    subprocess.run(["bash", str(SAIO / "stop-saio.sh"), "--purge", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
    unavailable(f"could not start the test Swift server: {err.strip()[-2000:]}\n{tail}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def swift_server() -> Iterator[SwiftServer]:
    external = _external()
    if external is not None:
        yield external
        return
    server = _start_managed()
    try:
        yield server
    finally:
        assert server.base is not None
        server._script("stop-saio.sh", "--purge", str(server.base))


def unique_name(prefix: str = "") -> str:
    """A unique bucket/container name the destructive tests accept (DNS-safe for S3)."""
    return f"{prefix}{uuid.uuid4().hex[:16]}{TEST_SUFFIX}"




def guard_destructive(name: str, listing: list[Any]) -> None:
    """Refuse to run tests that delete things on a bucket that is not ours to wreck."""
    if not name.endswith(TEST_SUFFIX):
        pytest.fail(f"refusing to test on {name!r}: not named '*{TEST_SUFFIX}'", pytrace=False)
    if listing:
        pytest.fail(f"refusing to test on {name!r}: not empty ({len(listing)}+ objects)", pytrace=False)


def _require_api(server: SwiftServer, api: str) -> None:
    if api == "s3" and not server.s3_endpoint:
        unavailable("no S3 endpoint: CAS_TEST_SWIFT_AUTH is set but CAS_TEST_S3_URL is not")
    if api == "swift" and not server.auth_url:
        unavailable("no Swift endpoint: CAS_TEST_S3_URL is set but CAS_TEST_SWIFT_AUTH is not")
    server.ensure_running()  # a fault test that died before restarting must not cascade


def _parallel(fn: Any, items: list[Any]) -> None:
    """Teardown deletes, 8 in flight: one by one they dominate a test's time on a busy box."""
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(fn, items):
            pass


@pytest.fixture
def s3_store(swift_server: SwiftServer) -> Iterator[Any]:
    from stores.s3 import S3Store

    _require_api(swift_server, "s3")
    bucket = os.environ.get("CAS_TEST_S3_BUCKET") or unique_name()
    store = S3Store.from_config(swift_server.s3_config(bucket), connect_timeout=2,
                                read_timeout=30, listing_limit=50)
    client = swift_server.s3_client()
    store.ensure_bucket()
    guard_destructive(bucket, client.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents", []))
    try:
        yield store
    finally:
        store.close()
        swift_server.ensure_running()
        # everything in the bucket, not only blobs: tests may plant foreign objects
        names = [obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                 for obj in page.get("Contents", ())]
        _parallel(lambda name: client.delete_object(Bucket=bucket, Key=name), names)
        if not os.environ.get("CAS_TEST_S3_BUCKET"):
            client.delete_bucket(Bucket=bucket)
        client.close()


@pytest.fixture
def swift_store(swift_server: SwiftServer) -> Iterator[Any]:
    from stores.swift import SwiftStore

    _require_api(swift_server, "swift")
    container = os.environ.get("CAS_TEST_SWIFT_CONTAINER") or unique_name()
    store = SwiftStore.from_config(swift_server.swift_config(container), connect_timeout=2,
                                   read_timeout=30, listing_limit=50)
    conn = swift_server.swift_connection()
    store.ensure_container()
    guard_destructive(container, conn.get_container(container, limit=1)[1])
    try:
        yield store
    finally:
        store.close()
        swift_server.ensure_running()
        local = threading.local()  # swiftclient connections are not thread-safe

        def delete(name: str) -> None:
            if not hasattr(local, "conn"):
                local.conn = swift_server.swift_connection()
            local.conn.delete_object(container, name)

        _parallel(delete, [obj["name"] for obj in conn.get_container(container, full_listing=True)[1]])
        if not os.environ.get("CAS_TEST_SWIFT_CONTAINER"):
            conn.delete_container(container)
        conn.close()
