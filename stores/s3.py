"""S3 blob store (boto3): one object per blob, named by `stores.layout.object_name`.

Invariants:
- Every botocore/urllib3 failure leaves this module as a `stores.errors` kind, `from` the
  original: NoSuchKey/404 → BlobNotFound; unreachable, timeouts, 5xx, SlowDown →
  StoreUnavailable; EntityTooLarge/quota → StorageFull; anything else (bad credentials, a
  missing bucket, ...) → StoreError.
- botocore retries are off (one attempt): `stores.wrappers.RetryingStore` owns retries, so a
  failure surfaces once, quickly, and is retried in one place with one policy.
- Secrets live only inside the boto3 client; `repr()` and log lines name endpoint and bucket.
- The client is thread-safe and its connection pool is sized for concurrent chunk I/O.
- Object names sort like keys (fixed-width hex under fixed-width fan-out), so a listing with
  StartAfter resumes exactly like `BlobStore.list(after)` promises.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import boto3
import botocore.config
import botocore.exceptions
import urllib3.exceptions

from stores.base import BlobInfo, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError, StoreUnavailable
from stores.layout import PREFIX, key_from_name, listing_start, object_name, validate_key

if TYPE_CHECKING:  # annotations only: stores never imports cas_glance at run time
    from cas_glance.config import S3Config

log = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError",
              "RequestTimeTooSkewed", "Throttling", "ThrottlingException", "503", "500"}
_FULL = {"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "InsufficientStorage"}
# failures of the HTTP exchange itself: the server may be down, restarting or overloaded
_WIRE = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
         botocore.exceptions.IncompleteReadError, urllib3.exceptions.HTTPError, OSError)


def _endpoint(host: str) -> str | None:
    host = host.strip()
    if not host:
        return None  # boto3's default: AWS itself
    return host if "://" in host else f"http://{host}"


def _translate(exc: Exception, what: str) -> StoreError:
    """Map a client exception to our error tree (the caller raises it `from exc`)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        msg = f"S3 {what}: {code or status} {err.get('Message', '')}".rstrip()
        if code in _NOT_FOUND:
            return BlobNotFound(msg)
        if code in _FULL or status == 507:
            return StorageFull(msg)
        if code in _TRANSIENT or status >= 500 or status == 429:
            return StoreUnavailable(msg)
        return StoreError(msg)
    if isinstance(exc, _WIRE):
        return StoreUnavailable(f"S3 {what}: {type(exc).__name__}: {exc}")
    return StoreError(f"S3 {what}: {type(exc).__name__}: {exc}")


def _client_config(cfg: S3Config, connect_timeout: float, read_timeout: float) -> botocore.config.Config:
    kwargs: dict[str, Any] = dict(
        signature_version="s3v4",
        s3={"addressing_style": cfg.bucket_url_format},  # path | virtual | auto, as botocore
        region_name=cfg.region_name or "us-east-1",
        max_pool_connections=cfg.max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
    )
    try:
        # botocore >= 1.36 checksums every body by default: CPU we do not need (blobfmt
        # verifies BLAKE3 above us) and headers older S3 clones do not understand.
        return botocore.config.Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required", **kwargs)
    except TypeError:
        return botocore.config.Config(**kwargs)


class S3Store:
    """BlobStore over one S3 bucket (AWS, Ceph RGW, MinIO, Swift's s3api)."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, *, region: str = "us-east-1",
                 create_bucket: bool = False, endpoint: str | None = None,
                 listing_limit: int = 1000) -> None:
        self._client = client
        self.listing_limit = listing_limit  # keys per ListObjectsV2 page (S3's maximum: 1000)
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint or "aws"
        self.capabilities = Capabilities(remote=True)
        self._create_bucket = create_bucket
        self._bucket_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, cfg: S3Config, *, connect_timeout: float = 5.0,
                    read_timeout: float = 60.0, listing_limit: int = 1000) -> "S3Store":
        endpoint = _endpoint(cfg.host)
        # a private session: boto3's default session is global state and not thread-safe
        session = boto3.session.Session()
        client = session.client(
            "s3", endpoint_url=endpoint,
            aws_access_key_id=cfg.access_key or None,
            aws_secret_access_key=cfg.secret_key or None,
            config=_client_config(cfg, connect_timeout, read_timeout))
        return cls(client, cfg.bucket, region=cfg.region_name or "us-east-1",
                   create_bucket=cfg.create_bucket_on_put, endpoint=endpoint,
                   listing_limit=listing_limit)

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- writes -------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        name = object_name(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)
            return
        except Exception as exc:  # noqa: BLE001 - every kind is translated below
            if not (self._create_bucket and _code(exc) == "NoSuchBucket"):
                raise _translate(exc, f"put {name}") from exc
        self.ensure_bucket()
        try:
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, f"put {name}") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (`s3_store_create_bucket_on_put`)."""
        with self._bucket_lock:  # one creator at a time; the others find it made
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                # us-east-1 is the one region that rejects an explicit LocationConstraint
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._client.create_bucket(**kwargs)
                log.info("s3: created bucket %s at %s", self.bucket, self.endpoint)
            except Exception as exc:  # noqa: BLE001
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise _translate(exc, f"create bucket {self.bucket}") from exc

    def flush(self, keys: Iterable[str]) -> None:
        """Nothing to do (a PUT is durable once answered); keys are still checked."""
        for key in keys:
            validate_key(key)

    def delete(self, key: str) -> None:
        name = object_name(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except Exception as exc:  # noqa: BLE001
            err = _translate(exc, f"delete {name}")
            if not isinstance(err, BlobNotFound):  # S3 DELETE is idempotent anyway
                raise err from exc

    # -- reads --------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        name = object_name(key)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                return bytes(body.read())  # read() checks Content-Length (IncompleteReadError)
            finally:
                body.close()
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, f"get {name}") from exc

    def stat(self, key: str) -> BlobInfo:
        name = object_name(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        except Exception as exc:  # noqa: BLE001
            # HEAD has no body: a missing bucket is indistinguishable from a missing key
            raise _translate(exc, f"stat {name}") from exc
        return BlobInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": PREFIX}
        if after:
            kwargs["StartAfter"] = listing_start(after)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                **kwargs, PaginationConfig={"PageSize": self.listing_limit})
            for page in pages:
                for obj in page.get("Contents", ()):
                    key = key_from_name(obj["Key"])
                    if key is None or (after is not None and key <= after):
                        continue  # foreign objects; or the slack below a partial `after`
                    yield BlobInfo(key, int(obj["Size"]), obj["LastModified"].timestamp())
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, f"list {self.bucket}/{PREFIX}") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            close = getattr(self._client, "close", None)  # botocore >= 1.28
            if close is not None:
                close()


def _code(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
