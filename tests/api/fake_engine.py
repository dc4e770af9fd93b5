"""An in-memory stand-in for cas_glance.engine.Engine, honouring ARCHITECTURE.md's contract.

Used only where a test needs a fault the real engine cannot be made to produce on demand (a
store that fails after the body was consumed). Every other API test runs the real engine.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from cas_glance import errors


@dataclass(frozen=True)
class FakeResult:
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str


class FakeOffload:
    async def io(self, fn, *args):  # type: ignore[no-untyped-def]
        return fn(*args)

    async def cpu(self, fn, *args):  # type: ignore[no-untyped-def]
        return fn(*args)


class FakeIndex:
    def __init__(self) -> None:
        self.images: dict[str, dict] = {}

    def create_image(self, record: dict) -> dict:
        if record["id"] in self.images:
            raise errors.Conflict(f"Image {record['id']} exists")
        self.images[record["id"]] = copy.deepcopy(record)
        return record

    def get_image(self, image_id: str) -> dict | None:
        rec = self.images.get(image_id)
        return None if rec is None or rec["status"] == "deleted" else copy.deepcopy(rec)

    def list_images(self) -> list[dict]:
        return [copy.deepcopy(r) for r in self.images.values() if r["status"] != "deleted"]

    def update_image(self, image_id: str, mutate: Callable[[dict], dict]) -> dict:
        rec = self.images.get(image_id)
        if rec is None:
            raise errors.NotFound(image_id)
        self.images[image_id] = mutate(copy.deepcopy(rec))
        return copy.deepcopy(self.images[image_id])

    delete_image = update_image


class FakeEngine:
    """`fail_after` > 0: the 'store' fails once that many bytes were received."""

    def __init__(self, fail_after: int = 0) -> None:
        self.index = FakeIndex()
        self.offload = FakeOffload()
        self.data: dict[str, bytes] = {}
        self.fail_after = fail_after

    async def upload(self, image_id: str, stream: AsyncIterator[bytes], *, begin, finish, revert,
                     size_cap: int, expected_size: int | None) -> dict:
        self.index.update_image(image_id, begin)
        try:
            buf = bytearray()
            async for piece in stream:
                buf += piece
                if len(buf) > size_cap:
                    raise errors.PayloadTooLarge("over the cap")
                if self.fail_after and len(buf) >= self.fail_after:
                    raise errors.StoreFailure("injected store failure")
            if expected_size is not None and expected_size != len(buf):
                raise errors.BadRequest("size mismatch")
        except BaseException:
            self.index.update_image(image_id, revert)
            raise
        self.data[image_id] = bytes(buf)
        res = FakeResult(len(buf), hashlib.md5(buf).hexdigest(), "sha512",
                         hashlib.sha512(buf).hexdigest())
        return self.index.update_image(image_id, lambda r: finish(r, res))

    async def read(self, image_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        data = self.data[image_id][start:end]
        for i in range(0, len(data), 65536):
            await asyncio.sleep(0)
            yield data[i:i + 65536]

    def close(self) -> None:
        pass
