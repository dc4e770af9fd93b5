"""OpenStack Swift blob store (python-swiftclient): one object per blob in one container.

Invariants:
- A `swiftclient.Connection` is not thread-safe, so each call borrows one from a pool of at
  most `max_connections` (callers beyond that wait) and gives it back; a connection whose HTTP
  exchange broke drops its socket but keeps its token, so it is reused without a new login.
- swiftclient's own retries are off (`retries=0`); `stores.wrappers.RetryingStore` owns
  retries. swiftclient still re-authenticates once on a 401 (an expired token).
- Errors leave as `stores.errors` kinds, `from` the original: 404 → BlobNotFound; 507/413 →
  StorageFull; 5xx, 408, 429, connection failures and timeouts → StoreUnavailable; anything
  else (bad credentials, 403, ...) → StoreError.
- Auth v1 (tempauth, user "account:user") goes through swiftclient; Keystone v2/v3 (user
  "project:user") go through a keystoneauth1 session, since swiftclient's own Keystone path
  needs python-keystoneclient. The key never appears in repr() or in log lines.
- Object names sort like keys, so a listing with `marker` resumes like `list(after)` promises.
"""
from __future__ import annotations

import email.utils
import logging
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import requests.exceptions
import swiftclient
import urllib3.exceptions
from swiftclient.exceptions import ClientException

from stores.base import BlobInfo, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError, StoreUnavailable
from stores.layout import PREFIX, key_from_name, listing_start, object_name, validate_key

if TYPE_CHECKING:  # annotations only: stores never imports cas_glance at run time
    from cas_glance.config import SwiftConfig

log = logging.getLogger(__name__)

_WIRE = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, socket.error)


def _translate(exc: Exception, what: str) -> StoreError:
    """Map a client exception to our error tree (the caller raises it `from exc`)."""
    if isinstance(exc, ClientException):
        status = exc.http_status
        msg = f"Swift {what}: {status or ''} {exc.http_reason or exc.msg}".replace("  ", " ")
        if status == 404:
            return BlobNotFound(msg)
        if status in (507, 413):
            return StorageFull(msg)
        if status is not None and (status >= 500 or status in (408, 429, 498)):
            return StoreUnavailable(msg)
        return StoreError(msg)
    if isinstance(exc, _WIRE):
        return StoreUnavailable(f"Swift {what}: {type(exc).__name__}: {exc}")
    try:  # Keystone sessions raise their own tree; import only when it may be in use
        from keystoneauth1 import exceptions as ksa
    except ImportError:  # pragma: no cover - keystoneauth1 absent: no Keystone sessions
        ksa = None
    if ksa is not None and isinstance(exc, (ksa.ConnectionError, ksa.ServiceUnavailable)):
        return StoreUnavailable(f"Swift {what}: Keystone: {type(exc).__name__}: {exc}")
    return StoreError(f"Swift {what}: {type(exc).__name__}: {exc}")


def _keystone_session(cfg: SwiftConfig, project: str | None, user: str,
                      timeout: tuple[float, float]) -> Any:
    try:
        from keystoneauth1 import session
        from keystoneauth1.identity import v2, v3
    except ImportError as exc:
        raise StoreError("Swift: Keystone auth (swift_store_auth_version 2/3) needs the "
                         "keystoneauth1 package") from exc
    if cfg.auth_version == "2":
        auth: Any = v2.Password(auth_url=cfg.auth_address, username=user, password=cfg.key,
                                tenant_name=project)
    else:
        auth = v3.Password(auth_url=cfg.auth_address, username=user, password=cfg.key,
                           project_name=project, user_domain_name=cfg.user_domain_name,
                           project_domain_name=cfg.project_domain_name)
    return session.Session(auth=auth, timeout=timeout[1])


class SwiftStore:
    """BlobStore over one Swift container."""

    name = "swift"

    def __init__(self, connect: Callable[[], Any], container: str, *,
                 create_container: bool = False, max_connections: int = 32,
                 listing_limit: int = 10000, where: str = "") -> None:
        self._connect = connect  # builds one swiftclient.Connection; auth is lazy
        self.container = container
        self.listing_limit = listing_limit
        self.capabilities = Capabilities(remote=True)
        self._where = where
        self._create_container = create_container
        self._slots = threading.BoundedSemaphore(max(1, max_connections))
        self._idle: list[Any] = []  # LIFO: the most recently used socket is the warmest
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, cfg: SwiftConfig, *, connect_timeout: float = 5.0,
                    read_timeout: float = 60.0, listing_limit: int = 10000) -> "SwiftStore":
        timeout = (connect_timeout, read_timeout)  # requests: (connect, read)
        # starting_backoff: swiftclient sleeps it before re-trying a request after a re-login
        kwargs: dict[str, Any] = dict(retries=0, starting_backoff=0.01, timeout=timeout,
                                      auth_version=cfg.auth_version)
        if cfg.auth_version == "1":
            kwargs.update(authurl=cfg.auth_address, user=cfg.user, key=cfg.key)
        else:
            project, _, user = cfg.user.rpartition(":")
            sess = _keystone_session(cfg, project or None, user, timeout)
            kwargs.update(session=sess, os_options={
                "service_type": "object-store", "endpoint_type": "public",
                "region_name": cfg.region or None})

        def connect() -> Any:
            return swiftclient.Connection(**kwargs)

        return cls(connect, cfg.container, create_container=cfg.create_container_on_put,
                   max_connections=cfg.max_connections, listing_limit=listing_limit,
                   where=f"{cfg.auth_address} as {cfg.user}")

    def __repr__(self) -> str:
        return f"SwiftStore(auth={self._where!r}, container={self.container!r})"

    @contextmanager
    def _conn(self, what: str) -> Iterator[Any]:
        """Borrow a connection; translate whatever the body raises."""
        if self._closed:
            raise StoreError(f"Swift {what}: store is closed")
        self._slots.acquire()
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            broken = True
            try:
                yield conn
                broken = False
            except ClientException as exc:
                broken = exc.http_status is None  # an HTTP answer leaves the socket usable
                raise _translate(exc, what) from exc
            except StoreError:
                broken = False
                raise
            except Exception as exc:  # noqa: BLE001 - every kind is translated
                raise _translate(exc, what) from exc
            finally:
                if broken:
                    conn.close()  # drops only the socket; url and token stay for reuse
                with self._lock:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.append(conn)
        finally:
            self._slots.release()

    # -- writes -------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        name = object_name(key)
        try:
            with self._conn(f"put {name}") as conn:
                self._put(conn, name, data)
            return
        except BlobNotFound as exc:  # a PUT 404s only when the container is missing
            if not self._create_container:
                raise StoreError(f"Swift put {name}: container {self.container!r} does not "
                                 "exist (swift_store_create_container_on_put is off)") from exc
        self.ensure_container()
        with self._conn(f"put {name}") as conn:
            self._put(conn, name, data)

    def _put(self, conn: Any, name: str, data: bytes) -> None:
        try:
            conn.put_object(self.container, name, data, content_length=len(data))
        except ClientException as exc:
            # On a 401 swiftclient drops the token, but with retries=0 it refuses to resend a
            # body ("no ability to reset contents"); bytes can be resent: log in, send again.
            if exc.http_status is not None or conn.token is not None:
                raise
            conn.put_object(self.container, name, data, content_length=len(data))

    def ensure_container(self) -> None:
        """Create the container (idempotent on Swift: PUT of an existing one is a 202)."""
        with self._conn(f"create container {self.container}") as conn:
            conn.put_container(self.container)
        log.info("swift: ensured container %s at %s", self.container, self._where)

    def flush(self, keys: Iterable[str]) -> None:
        """Nothing to do (Swift answers a PUT once it is durable); keys are still checked."""
        for key in keys:
            validate_key(key)

    def delete(self, key: str) -> None:
        name = object_name(key)
        try:
            with self._conn(f"delete {name}") as conn:
                conn.delete_object(self.container, name)
        except BlobNotFound:
            pass  # idempotent by contract

    # -- reads --------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        name = object_name(key)
        with self._conn(f"get {name}") as conn:
            _headers, body = conn.get_object(self.container, name)
        return bytes(body)

    def stat(self, key: str) -> BlobInfo:
        name = object_name(key)
        with self._conn(f"stat {name}") as conn:
            headers = conn.head_object(self.container, name)
        if "x-timestamp" in headers:  # the write time itself, with sub-second precision
            mtime = float(headers["x-timestamp"])
        else:
            mtime = email.utils.parsedate_to_datetime(headers["last-modified"]).timestamp()
        return BlobInfo(key, int(headers["content-length"]), mtime)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        marker = listing_start(after) if after else ""
        while True:
            # one page per borrow: the caller may abandon the generator between pages
            with self._conn(f"list {self.container}/{PREFIX}") as conn:
                _headers, page = conn.get_container(
                    self.container, prefix=PREFIX, marker=marker, limit=self.listing_limit)
            if not page:
                return
            for obj in page:
                key = key_from_name(obj["name"])
                if key is None or (after is not None and key <= after):
                    continue  # foreign objects; or the slack below a partial `after`
                yield BlobInfo(key, int(obj["bytes"]), _iso_mtime(obj["last_modified"]))
            marker = page[-1]["name"]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _iso_mtime(text: str) -> float:
    """Swift listings give UTC ISO-8601 without a zone ("2026-11-26T02:11:33.123450")."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()
