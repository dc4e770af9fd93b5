"""RetryingStore and FailingStore: both pass the conformance suite, and do what they promise.

The retrying contract run goes through a FailingStore that makes every third call of each
operation unavailable: the whole suite must still pass, which shows the retries hide
transient faults from every method, listings included.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from stores.base import BlobStore
from stores.errors import BlobNotFound, StorageFull, StoreError, StoreUnavailable
from stores.memory import MemoryStore
from stores.wrappers import FailingStore, RetryingStore
from tests.stores.contract import StoreContract, random_key, random_keys


def no_sleep(seconds: float) -> None:
    pass


def every_third_call_unavailable(op: str, key: str, n: int) -> BaseException | None:
    return StoreUnavailable(f"{op} #{n}") if n % 3 == 2 else None


class TestFailingStoreDisarmed(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = FailingStore(MemoryStore(), {"put": "U*", "get": "E*"}, armed=False)
        yield s
        s.close()


class TestRetryingStoreOverTransientFaults(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = RetryingStore(FailingStore(MemoryStore(), every_third_call_unavailable),
                          sleep=no_sleep)
        yield s
        s.close()


# -- RetryingStore -------------------------------------------------------------------------


def test_retrying_recovers_from_fewer_failures_than_attempts() -> None:
    failing = FailingStore(MemoryStore(), {"put": "UUUU", "get": "UUUU"})
    waits: list[float] = []
    store = RetryingStore(failing, attempts=5, base_delay=0.1, max_delay=0.3, sleep=waits.append)
    key = random_key()
    store.put(key, b"x")
    assert store.get(key) == b"x"
    assert failing.calls["put"] == 5 and failing.calls["get"] == 5
    # backoff doubles up to max_delay, jittered into [d/2, d]
    for wait, d in zip(waits, [0.1, 0.2, 0.3, 0.3] * 2):
        assert d / 2 <= wait <= d


def test_retrying_gives_up_after_the_configured_attempts() -> None:
    failing = FailingStore(MemoryStore(), {"stat": "U*"})
    store = RetryingStore(failing, attempts=3, sleep=no_sleep)
    with pytest.raises(StoreUnavailable):
        store.stat(random_key())
    assert failing.calls["stat"] == 3


@pytest.mark.parametrize("code, error", [("N", BlobNotFound), ("F", StorageFull),
                                         ("E", StoreError)])
def test_retrying_does_not_retry_permanent_errors(code: str, error: type[Exception]) -> None:
    failing = FailingStore(MemoryStore(), {"put": code + "*", "get": code + "*"})
    store = RetryingStore(failing, sleep=no_sleep)
    with pytest.raises(error):
        store.put(random_key(), b"x")
    with pytest.raises(error):
        store.get(random_key())
    assert failing.calls["put"] == 1 and failing.calls["get"] == 1


def test_retrying_does_not_retry_a_missing_blob() -> None:
    inner = FailingStore(MemoryStore())
    with pytest.raises(BlobNotFound):
        RetryingStore(inner, sleep=no_sleep).get(random_key())
    assert inner.calls["get"] == 1


def test_an_interrupted_listing_resumes_after_the_last_key_it_yielded() -> None:
    memory = MemoryStore()
    keys = sorted(random_keys(10))
    for k in keys:
        memory.put(k, b"")
    failing = FailingStore(memory, {"list_item": "...U..U"})
    store = RetryingStore(failing, sleep=no_sleep)
    assert [b.key for b in store.list()] == keys  # no duplicates, nothing skipped
    assert failing.calls["list"] == 3


def test_flush_retries_with_every_key_even_when_given_an_iterator() -> None:
    memory = MemoryStore()
    keys = random_keys(3)
    for k in keys:
        memory.put(k, b"")
    seen: list[list[str]] = []

    class Recording(FailingStore):
        def flush(self, ks):  # type: ignore[no-untyped-def]
            ks = list(ks)
            seen.append(ks)
            super().flush(ks)

    RetryingStore(Recording(memory, {"flush": "U"}), sleep=no_sleep).flush(iter(keys))
    assert seen == [keys, keys]


# -- FailingStore --------------------------------------------------------------------------


def test_failing_fails_exactly_the_calls_its_pattern_names() -> None:
    store = FailingStore(MemoryStore(), {"put": ".U.E"})
    keys = random_keys(5)
    results = []
    for k in keys:
        try:
            store.put(k, b"x")
            results.append(".")
        except StoreUnavailable:
            results.append("U")
        except StoreError:
            results.append("E")
    assert "".join(results) == ".U.E."  # past the pattern, calls pass
    assert [store.exists(k) for k in keys] == [True, False, True, False, True]


def test_failing_with_a_star_fails_every_call_after_n() -> None:
    store = FailingStore(MemoryStore(), {"put": "..F*"})
    store.put(random_key(), b"1")
    store.put(random_key(), b"2")
    for _ in range(3):
        with pytest.raises(StorageFull):
            store.put(random_key(), b"more")


def test_failing_with_a_rule_can_target_one_key() -> None:
    bad = random_key()
    store = FailingStore(MemoryStore(), lambda op, key, n:
                         StoreUnavailable(key) if op == "get" and key == bad else None)
    good = random_key()
    for k in (bad, good):
        store.put(k, k.encode())
    assert store.get(good) == good.encode()
    with pytest.raises(StoreUnavailable):
        store.get(bad)
    assert store.stat(bad).size == 64


def test_failing_disarm_and_arm() -> None:
    store = FailingStore(MemoryStore(), {"get": "U*"})
    key = random_key()
    store.put(key, b"x")
    store.disarm()
    assert store.get(key) == b"x"
    store.arm()
    with pytest.raises(StoreUnavailable):
        store.get(key)
    assert store.calls["get"] == 2


@pytest.mark.parametrize("faults", [{"push": "U"}, {"put": "X"}, {"put": ""}, {"put": "*"}])
def test_failing_refuses_a_pattern_it_cannot_follow(faults: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        FailingStore(MemoryStore(), faults)


# -- build_store wraps remote stores -------------------------------------------------------


def test_build_store_wraps_s3_and_swift_in_retries_and_logs_no_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    import dataclasses
    import logging

    from cas_glance.config import Config, S3Config, SwiftConfig
    from stores.registry import build_store

    cfg = Config(s3=S3Config(host="http://user:pw-in-url@127.0.0.1:9", access_key="AK",
                             secret_key="s3-secret-value"),
                 swift=SwiftConfig(auth_address="http://127.0.0.1:9/auth/v1.0", user="t:u",
                                   key="swift-secret-value", auth_version="1"))
    with caplog.at_level(logging.INFO, logger="stores.registry"):
        for name in ("s3", "swift"):
            store = build_store(dataclasses.replace(cfg, default_store=name))
            assert isinstance(store, RetryingStore) and store.name == name
            store.close()
    assert "127.0.0.1:9" in caplog.text
    for secret in ("pw-in-url", "s3-secret-value", "swift-secret-value"):
        assert secret not in caplog.text
    with pytest.raises(ValueError, match="default_store"):
        build_store(dataclasses.replace(cfg, default_store="nfs"))
