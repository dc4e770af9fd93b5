"""S3Store against Swift's real s3api (tests/conftest.py): the conformance suite and its
benchmark half unchanged, plus what only a remote backend shows: the object names in the
bucket, credential and bucket errors, timeouts, and recovery after the server restarts."""
from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from stores.errors import StoreError, StoreUnavailable
from stores.s3 import S3Store
from stores.wrappers import RetryingStore
from tests.stores.contract import StoreBenchmark, StoreContract, blob_for, random_key

pytestmark = pytest.mark.swift


class TestS3Store(StoreContract):
    many_keys = 60  # above the fixture's page size (50): the listing crosses a page
    remote = True

    @pytest.fixture
    def store(self, s3_store: Any) -> Iterator[Any]:
        yield s3_store


class TestS3StoreBench(StoreBenchmark):
    rounds = 32  # one request per round; run with --benchmark-enable for numbers

    @pytest.fixture
    def store(self, s3_store: Any) -> Iterator[Any]:
        yield s3_store


# -- S3-specific behaviour (beyond the contract) -------------------------------------------
def test_blobs_are_named_chunks_ab_cd_key_in_the_bucket(s3_store: S3Store, swift_server: Any) -> None:
    key = random_key()
    s3_store.put(key, b"x")
    listing = swift_server.s3_client().list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert [o["Key"] for o in listing] == [f"chunks/{key[:2]}/{key[2:4]}/{key}"]


def test_foreign_objects_in_the_bucket_are_not_listed(s3_store: S3Store, swift_server: Any) -> None:
    key = random_key()
    s3_store.put(key, b"x")
    client = swift_server.s3_client()
    for name in ("README", "chunks/zz", f"chunks/{key[:2]}/{key[2:4]}/{key}.tmp"):
        client.put_object(Bucket=s3_store.bucket, Key=name, Body=b"not a blob")
    assert [i.key for i in s3_store.list()] == [key]


def test_bad_credentials_are_a_clear_store_error(swift_server: Any) -> None:
    cfg = swift_server.s3_config("nothere-cas-test", secret_key="wrong-secret-value")
    store = S3Store.from_config(cfg)
    with pytest.raises(StoreError) as err:
        store.get(random_key())
    assert type(err.value) is StoreError  # not retryable, not "missing"
    assert "SignatureDoesNotMatch" in str(err.value) or "AccessDenied" in str(err.value)
    assert "wrong-secret-value" not in str(err.value) + repr(store)


def test_a_missing_bucket_is_an_error_not_an_empty_listing(swift_server: Any) -> None:
    store = S3Store.from_config(swift_server.s3_config("nothere-cas-test", create_bucket_on_put=False))
    with pytest.raises(StoreError, match="NoSuchBucket"):
        list(store.list())
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.put(random_key(), b"x")


def test_an_unanswering_server_is_unavailable_after_the_read_timeout(swift_server: Any) -> None:
    with socket.socket() as sink:  # accepts connections (backlog) but never answers
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        cfg = swift_server.s3_config("x-cas-test", host=f"127.0.0.1:{sink.getsockname()[1]}")
        store = S3Store.from_config(cfg, connect_timeout=1, read_timeout=1)
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get(random_key())
        assert time.monotonic() - t0 < 5


@pytest.mark.slow
def test_swift_down_is_unavailable_and_a_retrying_store_recovers(s3_store: S3Store, swift_server: Any) -> None:
    key, later = random_key(), random_key()
    s3_store.put(key, blob_for(key))
    swift_server.stop()
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        s3_store.get(key)
    assert time.monotonic() - t0 < 2  # connection refused: no hang, no hidden retries
    restart = swift_server.restart_later(0.5)
    retrying = RetryingStore(s3_store, attempts=10_000, base_delay=0.1, max_delay=0.25,
                             sleep=restart.sleep)  # bounded by the restart's own timeout
    retrying.put(later, blob_for(later))  # keeps failing until Swift is back, then lands
    restart.join()
    assert retrying.get(key) == blob_for(key) and s3_store.get(later) == blob_for(later)


def test_first_puts_from_many_threads_create_the_missing_bucket(swift_server: Any) -> None:
    bucket = f"{uuid.uuid4().hex[:16]}-cas-test"
    store = S3Store.from_config(swift_server.s3_config(bucket, create_bucket_on_put=True))
    keys = [random_key() for _ in range(16)]
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(k, blob_for(k)), keys))
        assert [i.key for i in store.list()] == sorted(keys)
    finally:
        for k in keys:
            store.delete(k)
        swift_server.s3_client().delete_bucket(Bucket=bucket)
