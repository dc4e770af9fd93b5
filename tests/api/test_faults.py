"""Store failures seen through the API: the status codes Glance clients act on, and that a
failed upload leaves the image `queued` (DESIGN.md, error contract)."""
from __future__ import annotations

import os

import pytest

from cas_glance.app import create_app
from cas_glance.engine import Engine
from stores.memory import MemoryStore
from stores.wrappers import FailingStore
from tests.api.helpers import active_image, create, show, upload


@pytest.fixture
async def faulty(aiohttp_client, cfg):
    store = FailingStore(MemoryStore(), {}, armed=False)
    engine = Engine.open(cfg, store=store)
    client = await aiohttp_client(create_app(cfg, engine=engine))
    yield client, store
    engine.close()


def _fail(store, faults):
    store._rule = FailingStore(store.inner, faults)._rule  # re-aim the injected faults
    store.arm()


async def test_store_failure_after_the_body_was_read_is_500_never_503(faulty):
    client, store = faulty
    image = await create(client)
    _fail(store, {"put": "U*"})
    resp = await upload(client, image["id"], os.urandom(1 << 20))
    assert resp.status == 500, await resp.text()
    store.disarm()
    assert (await show(client, image["id"]))["status"] == "queued"
    assert (await upload(client, image["id"], b"retry works")).status == 204


async def test_full_store_is_413_and_image_back_to_queued(faulty):
    client, store = faulty
    image = await create(client)
    _fail(store, {"put": "F*"})
    resp = await upload(client, image["id"], os.urandom(1 << 20))
    assert resp.status == 413
    store.disarm()
    assert (await show(client, image["id"]))["status"] == "queued"


async def test_unreachable_store_on_download_is_503_before_any_byte(faulty):
    client, store = faulty
    image = await active_image(client, os.urandom(300_000))
    _fail(store, {"get": "U*"})
    resp = await client.get(f"/v2/images/{image['id']}/file")
    assert resp.status == 503
    assert resp.headers["x-openstack-request-id"].startswith("req-")
