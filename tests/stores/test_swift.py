"""SwiftStore against a real Swift (tests/conftest.py): the conformance suite and its
benchmark half unchanged, plus what only a remote backend shows: the object names in the
container, paging, auth and container errors, timeouts, and re-login after a restart."""
from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from stores.errors import StoreError, StoreUnavailable
from stores.swift import SwiftStore
from stores.wrappers import RetryingStore
from tests.stores.contract import StoreBenchmark, StoreContract, blob_for, random_key

pytestmark = pytest.mark.swift


class TestSwiftStore(StoreContract):
    many_keys = 60  # above the fixture's page size (50): the listing crosses a page
    remote = True

    @pytest.fixture
    def store(self, swift_store: Any) -> Iterator[Any]:
        yield swift_store


class TestSwiftStoreBench(StoreBenchmark):
    rounds = 32  # one request per round; run with --benchmark-enable for numbers

    @pytest.fixture
    def store(self, swift_store: Any) -> Iterator[Any]:
        yield swift_store


# -- Swift-specific behaviour (beyond the contract) ----------------------------------------
def test_blobs_are_named_chunks_ab_cd_key_in_the_container(swift_store: SwiftStore, swift_server: Any) -> None:
    key = random_key()
    swift_store.put(key, b"x")
    listing = swift_server.swift_connection().get_container(swift_store.container)[1]
    assert [o["name"] for o in listing] == [f"chunks/{key[:2]}/{key[2:4]}/{key}"]


def test_foreign_objects_in_the_container_are_not_listed(swift_store: SwiftStore, swift_server: Any) -> None:
    key = random_key()
    swift_store.put(key, b"x")
    conn = swift_server.swift_connection()
    for name in ("README", "chunks/zz", f"chunks/{key[:2]}/{key[2:4]}/{key}.tmp"):
        conn.put_object(swift_store.container, name, b"not a blob")
    assert [i.key for i in swift_store.list()] == [key]


def test_listing_pages_through_small_pages(swift_store: SwiftStore) -> None:
    keys = sorted(random_key() for _ in range(7))
    for k in keys:
        swift_store.put(k, b"")
    swift_store.listing_limit = 2
    assert [i.key for i in swift_store.list()] == keys
    assert [i.key for i in swift_store.list(after=keys[2])] == keys[3:]


def test_bad_credentials_are_a_clear_store_error(swift_server: Any) -> None:
    store = SwiftStore.from_config(swift_server.swift_config("x-cas-test", key="wrong-key-value"))
    with pytest.raises(StoreError) as err:
        store.get(random_key())
    assert type(err.value) is StoreError and "401" in str(err.value)
    assert "wrong-key-value" not in str(err.value) + repr(store)


def test_keystone_auth_against_a_non_keystone_url_is_a_store_error(swift_server: Any) -> None:
    cfg = swift_server.swift_config("x-cas-test", auth_version="3", auth_address=swift_server.s3_endpoint + "/v3")
    with pytest.raises(StoreError):
        SwiftStore.from_config(cfg, connect_timeout=1, read_timeout=5).get(random_key())


def test_a_missing_container_without_create_is_a_store_error(swift_server: Any) -> None:
    store = SwiftStore.from_config(swift_server.swift_config("nothere-cas-test", create_container_on_put=False))
    with pytest.raises(StoreError, match="does not exist"):
        store.put(random_key(), b"x")
    with pytest.raises(StoreError):
        list(store.list())


def test_an_unanswering_server_is_unavailable_after_the_read_timeout(swift_server: Any) -> None:
    with socket.socket() as sink:  # accepts connections (backlog) but never answers
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        url = f"http://127.0.0.1:{sink.getsockname()[1]}/auth/v1.0"
        store = SwiftStore.from_config(swift_server.swift_config("x-cas-test", auth_address=url),
                                       connect_timeout=1, read_timeout=1)
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get(random_key())
        assert time.monotonic() - t0 < 5


@pytest.mark.slow
def test_swift_down_is_unavailable_and_a_retrying_store_recovers(swift_store: SwiftStore, swift_server: Any) -> None:
    key, later = random_key(), random_key()
    swift_store.put(key, blob_for(key))
    swift_server.stop()
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        swift_store.get(key)
    assert time.monotonic() - t0 < 2  # connection refused: no hang, no hidden retries
    restart = swift_server.restart_later(0.5)
    # the restarted proxy forgot every token: swiftclient must log in again by itself
    retrying = RetryingStore(swift_store, attempts=10_000, base_delay=0.1, max_delay=0.25,
                             sleep=restart.sleep)  # bounded by the restart's own timeout
    retrying.put(later, blob_for(later))
    restart.join()
    assert retrying.get(key) == blob_for(key) and swift_store.get(later) == blob_for(later)


def test_first_puts_from_many_threads_create_the_missing_container(swift_server: Any) -> None:
    container = f"{uuid.uuid4().hex[:16]}-cas-test"
    store = SwiftStore.from_config(swift_server.swift_config(container, create_container_on_put=True))
    keys = [random_key() for _ in range(16)]
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(k, blob_for(k)), keys))
        assert [i.key for i in store.list()] == sorted(keys)
    finally:
        for k in keys:
            store.delete(k)
        swift_server.swift_connection().delete_container(container)
