"""Cross-cutting store behaviour as wrappers that are themselves BlobStores.

Backends stay simple; retries and fault injection wrap them and pass the same conformance
suite (tests/stores/contract.py). Invariants:

* `RetryingStore` retries only `StoreUnavailable` (transient by definition). BlobNotFound,
  StorageFull, StoreError and ValueError pass straight through: retrying cannot fix them.
  Every BlobStore operation is idempotent (puts of a digest key, deletes of missing keys), so
  repeating one after an ambiguous failure is safe. An interrupted listing resumes after the
  last key it yielded instead of starting over.
* `FailingStore` injects faults for tests only; disarmed, it is a transparent pass-through.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

from stores.base import BlobInfo, BlobStore, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryingStore:
    """Retry transient failures of `inner` with capped exponential backoff and jitter.

    `attempts` is the total number of tries of one call (so attempts=5 means 4 retries). The
    n-th retry waits a random time in [d/2, d] with d = min(max_delay, base_delay * 2**n):
    the jitter spreads out many threads that failed together. `sleep` and `rng` exist so
    tests can run without waiting.
    """

    def __init__(self, inner: BlobStore, attempts: int = 5, base_delay: float = 0.05,
                 max_delay: float = 2.0, *, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        if attempts < 1:
            raise ValueError("attempts: must be at least 1")
        self.inner = inner
        self.name = inner.name  # transparent: logs and stats name the real backend
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def _backoff(self, op: str, failures: int, exc: StoreUnavailable) -> None:
        """Wait before retry number `failures`, or re-raise when the attempts are used up."""
        if failures >= self.attempts:
            log.warning("store %s: %s failed %d times, giving up: %s", self.name, op, failures, exc)
            raise exc
        delay = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        delay = self._rng.uniform(delay / 2, delay)
        log.info("store %s: %s unavailable (%s); retry %d/%d in %.3fs",
                 self.name, op, exc, failures, self.attempts - 1, delay)
        self._sleep(delay)

    def _call(self, op: str, fn: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return fn()
            except StoreUnavailable as exc:
                failures += 1
                self._backoff(op, failures, exc)

    def put(self, key: str, data: bytes) -> None:
        self._call("put", lambda: self.inner.put(key, data))

    def flush(self, keys: Iterable[str]) -> None:
        keys = list(keys)  # an iterator would be used up by the first attempt
        self._call("flush", lambda: self.inner.flush(keys))

    def get(self, key: str) -> bytes:
        return self._call("get", lambda: self.inner.get(key))

    def stat(self, key: str) -> BlobInfo:
        return self._call("stat", lambda: self.inner.stat(key))

    def exists(self, key: str) -> bool:
        return self._call("exists", lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self.inner.delete(key))

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        # Failures count while no progress is made; each yielded key resets the count.
        failures = 0
        while True:
            try:
                for info in self.inner.list(after=after):
                    yield info
                    after, failures = info.key, 0
                return
            except StoreUnavailable as exc:
                failures += 1
                self._backoff("list", failures, exc)

    def close(self) -> None:
        self.inner.close()


# A rule decides the fault for the n-th (0-based) call of `op` on `key`: an exception or None.
FaultRule = Callable[[str, str, int], BaseException | None]

FAULT_CODES: Mapping[str, type[StoreError]] = {
    "U": StoreUnavailable,
    "E": StoreError,
    "F": StorageFull,
    "N": BlobNotFound,
}
OPS = ("put", "flush", "get", "stat", "exists", "delete", "list", "list_item")


def _pattern_rule(faults: Mapping[str, str]) -> FaultRule:
    """Turn {"put": "..U*"} style patterns into a rule (see FailingStore)."""
    for op, pattern in faults.items():
        if op not in OPS:
            raise ValueError(f"unknown store operation {op!r} (one of {', '.join(OPS)})")
        body = pattern[:-1] if pattern.endswith("*") else pattern
        bad = set(body) - set(FAULT_CODES) - {"."}
        if bad or not body:
            raise ValueError(f"fault pattern for {op}: {pattern!r} (use . U E F N and a final *)")

    def rule(op: str, key: str, n: int) -> BaseException | None:
        pattern = faults.get(op, "")
        if pattern.endswith("*"):
            pattern = pattern[:-1]
            code = pattern[min(n, len(pattern) - 1)]
        else:
            code = pattern[n] if n < len(pattern) else "."
        if code == ".":
            return None
        return FAULT_CODES[code](f"injected fault: {op} call #{n + 1} ({key or '-'})")

    return rule


class FailingStore:
    """Fault injection for tests: `inner` with chosen calls failing.

    `faults` is either a rule `(op, key, n) -> exception | None`, where n counts the calls of
    `op` from 0, or a map from operation to a pattern with one character per call:
    "." passes, "U" raises StoreUnavailable, "E" StoreError, "F" StorageFull,
    "N" BlobNotFound; a final "*" repeats the last character forever, else later calls pass.

        FailingStore(inner, {"put": "UU"})      # the first two puts are unavailable
        FailingStore(inner, {"put": "...E*"})   # every put after the third fails
        FailingStore(inner, {"list_item": "..U"})  # a listing breaks at its third item
        FailingStore(inner, lambda op, key, n: StoreUnavailable() if key == k else None)

    Operations: put flush get stat exists delete list (at the start of a listing) and
    list_item (before each yielded item, counted across listings). The fault is raised
    before the inner store is called. `disarm()` stops faults and counting; `arm()` resumes;
    `calls` counts every call per operation, armed or not.
    """

    def __init__(self, inner: BlobStore, faults: Mapping[str, str] | FaultRule | None = None,
                 *, armed: bool = True) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[str] = Counter()
        self._rule = faults if callable(faults) else _pattern_rule(faults or {})
        self._armed = armed
        self._counts: Counter[str] = Counter()  # calls seen while armed: the n of the rule
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def arm(self) -> None:
        with self._lock:
            self._armed = True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False

    def _check(self, op: str, key: str = "") -> None:
        with self._lock:
            self.calls[op] += 1
            if not self._armed:
                return
            n = self._counts[op]
            self._counts[op] += 1
        exc = self._rule(op, key, n)
        if exc is not None:
            raise exc

    def put(self, key: str, data: bytes) -> None:
        self._check("put", key)
        self.inner.put(key, data)

    def flush(self, keys: Iterable[str]) -> None:
        self._check("flush")
        self.inner.flush(keys)

    def get(self, key: str) -> bytes:
        self._check("get", key)
        return self.inner.get(key)

    def stat(self, key: str) -> BlobInfo:
        self._check("stat", key)
        return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        self._check("exists", key)
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self._check("delete", key)
        self.inner.delete(key)

    def list(self, after: str | None = None) -> Iterator[BlobInfo]:
        self._check("list", after or "")
        for info in self.inner.list(after=after):
            self._check("list_item", info.key)
            yield info

    def close(self) -> None:
        self.inner.close()
