"""Stateful model test: random sequences of uploads (of overlapping content), deletes
(immediate and delayed), downloads and collections against a model {image id: bytes}.
After every collection with grace 0 and scrub_time 0 the store holds exactly the chunks of
the live images, and at the end fsck is clean."""
from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cas_glance import fsck
from cas_glance.engine import Engine
from tests.gc.lab import Lab, small_config

_rnd = random.Random(99)
BLOCKS = [_rnd.randbytes(24 * 1024) for _ in range(6)] + [bytes(24 * 1024)]  # one all-zero


class Collector(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="cas-gc-stateful-"))
        self.lab = Lab(Engine.open(small_config(self.dir / "data")))
        self.live: dict[str, bytes] = {}

    def teardown(self) -> None:
        try:
            self.lab.collect(grace=0)
            result = fsck.check(self.lab.index, self.lab.store, verify_blobs=True)
            assert result.clean, result.problems
        finally:
            self.lab.engine.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(picks=st.lists(st.integers(0, len(BLOCKS) - 1), min_size=1, max_size=6))
    def upload(self, picks: list[int]) -> None:
        data = b"".join(BLOCKS[i] for i in picks)
        self.live[asyncio.run(self.lab.upload(data))] = data

    @precondition(lambda self: self.live)
    @rule(data=st.data(), delayed=st.booleans())
    def delete(self, data: st.DataObject, delayed: bool) -> None:
        iid = data.draw(st.sampled_from(sorted(self.live)))
        del self.live[iid]
        self.lab.delete(iid, delayed=delayed)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def download(self, data: st.DataObject) -> None:
        iid = data.draw(st.sampled_from(sorted(self.live)))
        assert asyncio.run(self.lab.download(iid)) == self.live[iid]

    @rule()
    def collect(self) -> None:
        self.lab.collect(grace=0, scrub_time=0)
        needed = {d for iid in self.live for _o, d, _n in self.lab.index.manifest(iid) if d is not None}
        assert {i.key for i in self.lab.store.list()} == needed
        assert set(self.lab.chunks()) == needed

    @invariant()
    def referenced_chunks_are_stored(self) -> None:
        stored = {i.key for i in self.lab.store.list()}
        for iid in self.live:
            assert {d for _o, d, _n in self.lab.index.manifest(iid) if d is not None} <= stored


Collector.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_collector_model = Collector.TestCase
