"""Image data over HTTP against a real engine (LMDB index + filesystem store in tmp_path):
upload and its failure modes, download with ranges, dedup under concurrency, disconnects."""
from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp
import pytest

from cas_glance.api.keys import ENGINE
from cas_glance.app import create_app
from tests.api.conftest import SMALL_CAP
from tests.blob_files import corrupt
from tests.api.helpers import OCTET, active_image, create, show, upload

DATA = os.urandom(1 << 20) + bytes(300_000) + os.urandom(200_001)  # many chunks, a zero run


async def test_upload_then_download_round_trips_with_hashes_and_hex_content_md5(client):
    image = await active_image(client, DATA)
    assert image["status"] == "active" and image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA).hexdigest()
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", hashlib.sha512(DATA).hexdigest())
    resp = await client.get(f"/v2/images/{image['id']}/file")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["Content-MD5"] == image["checksum"]
    assert await resp.read() == DATA


async def test_chunked_upload_without_content_length_as_glanceclient_sends(client):
    image = await create(client)

    async def body():
        for i in range(0, len(DATA), 65536):
            yield DATA[i:i + 65536]

    resp = await client.put(f"/v2/images/{image['id']}/file", data=body(),
                            headers={**OCTET, "x-openstack-image-size": str(len(DATA))})
    assert resp.status == 204, await resp.text()
    assert (await show(client, image["id"]))["checksum"] == hashlib.md5(DATA).hexdigest()


async def test_zero_byte_upload_is_active_and_downloads_empty(client):
    image = await active_image(client, b"")
    assert image["status"] == "active" and image["size"] == 0
    resp = await client.get(f"/v2/images/{image['id']}/file")
    assert resp.status == 200 and await resp.read() == b""


async def test_download_of_queued_image_is_204(client):
    image = await create(client)
    assert (await client.get(f"/v2/images/{image['id']}/file")).status == 204


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-9", 0, 10),
    ("bytes=65000-400000", 65000, 400001),        # crosses chunk boundaries
    ("bytes=1048000-1048575", 1048000, 1048576),  # into the zero run below
    ("bytes=1048000-1400000", 1048000, 1400001),  # data -> zeros -> data
    ("bytes=1500000-", 1500000, len(DATA)),
    ("bytes=-1000", len(DATA) - 1000, len(DATA)),
    ("bytes=-99999999", 0, len(DATA)),             # suffix longer than the image
    ("bytes=10-99999999", 10, len(DATA)),          # end clamped
])
async def test_single_range_is_206_with_content_range(client, header, start, end):
    image = await active_image(client, DATA)
    resp = await client.get(f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert resp.headers["Content-Length"] == str(end - start)
    assert resp.headers["Content-MD5"] == image["checksum"]  # of the whole image
    assert await resp.read() == DATA[start:end]


async def test_bad_ranges(client):
    image = await active_image(client, DATA)
    url = f"/v2/images/{image['id']}/file"
    for header in ("bytes=0-1,5-6",):
        assert (await client.get(url, headers={"Range": header})).status == 400, header
    for header in ("bytes=abc", "items=0-1", f"bytes={len(DATA)}-", "bytes=5-2", "bytes=-0", "bytes=-"):
        resp = await client.get(url, headers={"Range": header})
        assert resp.status == 416, header
        assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_upload_rules(client):
    image = await create(client)
    url = f"/v2/images/{image['id']}/file"
    # wrong media type
    resp = await client.put(url, data=b"x", headers={"Content-Type": "application/json"})
    assert resp.status == 415
    # size header mismatch -> 400, image back to queued and retryable
    resp = await upload(client, image["id"], b"abc", **{"x-openstack-image-size": "4"})
    assert resp.status == 400
    assert (await show(client, image["id"]))["status"] == "queued"
    assert (await upload(client, image["id"], b"abc")).status == 204
    # upload to an active image: 409
    assert (await upload(client, image["id"], b"abc")).status == 409
    # missing formats: 400
    bare = (await (await client.post("/v2/images", json={"name": "noformats"})).json())
    assert (await upload(client, bare["id"], b"abc")).status == 400
    assert (await client.put("/v2/images/not-a-uuid/file", data=b"x", headers=OCTET)).status == 404


async def test_body_over_size_cap_is_413_and_image_stays_queued(client):
    image = await create(client)

    async def body():  # chunked: the cap is only discovered while streaming
        for _ in range(SMALL_CAP // 65536 + 2):
            yield os.urandom(65536)

    resp = await client.put(f"/v2/images/{image['id']}/file", data=body(), headers=OCTET)
    assert resp.status == 413
    after = await show(client, image["id"])
    assert after["status"] == "queued" and after["size"] is None
    # declared up front: refused before reading
    resp = await upload(client, image["id"], b"x", **{"x-openstack-image-size": str(SMALL_CAP + 1)})
    assert resp.status == 413
    engine = client.app[ENGINE]
    assert list(engine.index.manifest(image["id"])) == []
    assert all(c["refcount"] == 0 for _, c in engine.index.iter_chunks())


async def test_concurrent_uploads_of_the_same_bytes_dedupe_to_one_copy(client):
    data = os.urandom(2 << 20)
    images = [await create(client, name=f"c{i}") for i in range(8)]
    results = await asyncio.gather(*(upload(client, im["id"], data) for im in images))
    assert [r.status for r in results] == [204] * 8
    shown = [await show(client, im["id"]) for im in images]
    assert {s["status"] for s in shown} == {"active"}
    assert {s["checksum"] for s in shown} == {hashlib.md5(data).hexdigest()}
    engine = client.app[ENGINE]
    digests = {d for _, d, _ in engine.index.manifest(images[0]["id"]) if d}
    chunks = dict(engine.index.iter_chunks())
    assert set(chunks) == digests
    assert {c["refcount"] for c in chunks.values()} == {8}
    blobs = list(engine.store.list())
    assert {b.key for b in blobs} == digests  # one blob per distinct chunk, not eight
    for im in images:
        resp = await client.get(f"/v2/images/{im['id']}/file")
        assert await resp.read() == data


async def test_client_disconnect_mid_upload_reverts_to_queued_and_releases_chunks(aiohttp_client, cfg):
    client = await aiohttp_client(create_app(cfg.replace(image_size_cap=1 << 30)))
    image = await create(client)
    engine = client.app[ENGINE]
    # a raw connection (the server runs on this loop: writes must not block it)
    _reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write((f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n").encode())
    piece = os.urandom(256 * 1024)
    for _ in range(40):  # 10 MiB: more than one pinned stretch (ingest.STRETCH, 8 MiB)
        writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await writer.drain()
    for _ in range(250):  # until the server is saving and has pinned chunks
        if (await show(client, image["id"]))["status"] == "saving" and any(
                engine.index.manifest(image["id"])):
            break
        await asyncio.sleep(0.02)
    assert any(engine.index.manifest(image["id"])), "nothing was pinned before the disconnect"
    writer.transport.abort()  # gone mid-body, no terminating chunk
    for _ in range(250):
        status = (await show(client, image["id"]))["status"]
        if status != "saving":
            break
        await asyncio.sleep(0.02)
    assert status == "queued"
    assert list(engine.index.manifest(image["id"])) == []
    assert all(c["refcount"] == 0 for _, c in engine.index.iter_chunks())
    # and the image takes a fresh upload
    assert (await upload(client, image["id"], b"retry")).status == 204


async def test_image_deleted_mid_upload_gives_410_and_stays_deleted(client):
    image = await create(client)
    sent_some, go_on = asyncio.Event(), asyncio.Event()

    async def body():
        yield os.urandom(512 * 1024)
        sent_some.set()
        await go_on.wait()
        yield os.urandom(512 * 1024)

    put = asyncio.ensure_future(upload(client, image["id"], body()))
    await sent_some.wait()
    for _ in range(100):  # until the server has begun (queued -> saving)
        if (await show(client, image["id"]))["status"] == "saving":
            break
        await asyncio.sleep(0.02)
    assert (await client.delete(f"/v2/images/{image['id']}")).status == 204
    go_on.set()
    resp = await put
    assert resp.status == 410, await resp.text()
    assert (await client.get(f"/v2/images/{image['id']}")).status == 404
    engine = client.app[ENGINE]
    assert list(engine.index.manifest(image["id"])) == []
    assert all(c["refcount"] == 0 for _, c in engine.index.iter_chunks())


async def test_corrupt_first_chunk_is_500_before_any_byte(client, cfg):
    image = await active_image(client, DATA)
    first = next(d for _, d, _ in client.app[ENGINE].index.manifest(image["id"]) if d)
    corrupt(client.app[ENGINE].store, first)
    resp = await client.get(f"/v2/images/{image['id']}/file")
    assert resp.status == 500


async def test_corrupt_later_chunk_cuts_the_body_short_instead_of_sending_wrong_bytes(client, cfg):
    image = await active_image(client, DATA)
    digests = [d for _, d, _ in client.app[ENGINE].index.manifest(image["id"]) if d]
    corrupt(client.app[ENGINE].store, digests[-1])
    resp = await client.get(f"/v2/images/{image['id']}/file")
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_concurrent_uploads_to_one_image_one_wins_the_other_is_409(client):
    image = await create(client)
    data = os.urandom(1 << 20)
    results = await asyncio.gather(*(upload(client, image["id"], data) for _ in range(2)))
    assert sorted(r.status for r in results) == [204, 409]
    final = await show(client, image["id"])
    assert final["status"] == "active" and final["checksum"] == hashlib.md5(data).hexdigest()
