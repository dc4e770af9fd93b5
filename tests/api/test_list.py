"""Listing over HTTP: pagination as glanceclient and the sdk follow it, filters, sorting."""
from __future__ import annotations

import uuid

from tests.api.helpers import active_image, create

MEMBER_A = {"X-Roles": "member", "X-Project-Id": "proj-a"}


async def _follow(client, url):
    """Walk `next` links the way glanceclient does; return the pages."""
    pages = []
    while url:
        resp = await client.get(url)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["schema"] == "/v2/schemas/images" and body["first"].startswith("/v2/images")
        pages.append(body)
        url = body.get("next")
    return pages


async def test_next_appears_on_every_full_page_so_the_last_page_may_be_empty(client):
    made = [await create(client, name=f"img{i}") for i in range(4)]
    pages = await _follow(client, "/v2/images?limit=2&sort_key=name&sort_dir=asc")
    assert [len(p["images"]) for p in pages] == [2, 2, 0]
    names = [im["name"] for p in pages for im in p["images"]]
    assert names == sorted(im["name"] for im in made)
    pages = await _follow(client, "/v2/images?limit=3")
    assert [len(p["images"]) for p in pages] == [3, 1]
    assert "next" not in pages[-1]


async def test_default_sort_is_newest_first_and_next_keeps_repeated_params(client):
    for i in range(3):
        await create(client, name=f"t{i}", tags=["a", "b"])
    resp = await client.get("/v2/images?tag=a&tag=b&limit=1")
    body = await resp.json()
    assert body["next"].count("tag=") == 2 and "marker=" in body["next"]
    pages = await _follow(client, "/v2/images?tag=a&tag=b&limit=1")
    assert sum(len(p["images"]) for p in pages) == 3


async def test_filters(client):
    big = await active_image(client, b"x" * 5000, name="big", tags=["blue"])
    small = await active_image(client, b"x" * 10, name="small")
    queued = await create(client, name="q", disk_format="qcow2", os_distro="debian")
    hidden = await create(client, name="hid", os_hidden=True)

    async def ids(query):
        resp = await client.get(f"/v2/images?{query}")
        assert resp.status == 200, (query, await resp.text())
        return {im["id"] for im in (await resp.json())["images"]}

    assert await ids("name=big") == {big["id"]}
    assert await ids("status=queued") == {queued["id"]}
    assert await ids("status=in:active,queued") == {big["id"], small["id"], queued["id"]}
    assert await ids("tag=blue") == {big["id"]}
    assert await ids("size_min=100") == {big["id"]}
    assert await ids("size_max=100") == {small["id"]}
    assert await ids("disk_format=qcow2") == {queued["id"]}
    assert await ids("os_distro=debian") == {queued["id"]}
    assert await ids("os_hidden=True") == {hidden["id"]}
    assert hidden["id"] not in await ids("")
    assert await ids(f"checksum={big['checksum']}") == {big["id"]}


async def test_bad_list_parameters_are_400(client):
    for query in ("limit=-1", "limit=abc", "sort_dir=sideways", "sort_key=nope",
                  f"marker={uuid.uuid4()}", "size_min=x", "changes-since=2020-01-01",
                  "sort=name:asc&sort_key=name", "created_at=whenever"):
        resp = await client.get(f"/v2/images?{query}")
        assert resp.status == 400, query


async def test_non_admin_sees_public_and_own_images_only(client):
    public = await create(client, name="pub", visibility="public")
    mine = (await (await client.post("/v2/images", json={"name": "mine"}, headers=MEMBER_A)).json())
    other = (await (await client.post("/v2/images", json={"name": "other"},
                                      headers={"X-Roles": "member", "X-Project-Id": "proj-b"})).json())
    resp = await client.get("/v2/images", headers=MEMBER_A)
    seen = {im["id"] for im in (await resp.json())["images"]}
    assert public["id"] in seen and mine["id"] in seen and other["id"] not in seen
