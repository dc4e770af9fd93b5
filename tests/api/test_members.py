"""Image sharing over HTTP: the owner shares, the member accepts, listings follow."""
from __future__ import annotations

OWNER = {"X-Roles": "member", "X-Project-Id": "proj-owner"}
MEMBER = {"X-Roles": "member", "X-Project-Id": "proj-member"}
STRANGER = {"X-Roles": "member", "X-Project-Id": "proj-stranger"}


async def _image(client, **body):
    resp = await client.post("/v2/images", json={"name": "shared", **body}, headers=OWNER)
    assert resp.status == 201
    return (await resp.json())["id"]


async def _listed(client, headers, query=""):
    resp = await client.get(f"/v2/images{query}", headers=headers)
    return {im["id"] for im in (await resp.json())["images"]}


async def test_share_accept_list_and_unshare(client):
    iid = await _image(client, visibility="shared")
    base = f"/v2/images/{iid}/members"
    assert (await client.get(f"/v2/images/{iid}", headers=MEMBER)).status == 404
    resp = await client.post(base, json={"member": "proj-member"}, headers=OWNER)
    assert resp.status == 200
    body = await resp.json()
    assert (body["member_id"], body["status"], body["schema"]) == ("proj-member", "pending", "/v2/schemas/member")
    assert (await client.post(base, json={"member": "proj-member"}, headers=OWNER)).status == 409
    # a pending member may see the image by id but does not list it by default
    assert (await client.get(f"/v2/images/{iid}", headers=MEMBER)).status == 200
    assert iid not in await _listed(client, MEMBER)
    assert iid in await _listed(client, MEMBER, "?member_status=pending")
    # only the member changes its status
    url = f"{base}/proj-member"
    assert (await client.put(url, json={"status": "accepted"}, headers=OWNER)).status == 403
    resp = await client.put(url, json={"status": "accepted"}, headers=MEMBER)
    assert resp.status == 200 and (await resp.json())["status"] == "accepted"
    assert iid in await _listed(client, MEMBER)
    listing = await (await client.get(base, headers=OWNER)).json()
    assert listing["schema"] == "/v2/schemas/members"
    assert [m["member_id"] for m in listing["members"]] == ["proj-member"]
    assert (await client.get(url, headers=MEMBER)).status == 200
    # strangers see nothing
    assert (await client.get(base, headers=STRANGER)).status == 404
    assert (await client.delete(url, headers=OWNER)).status == 204
    assert (await client.get(f"/v2/images/{iid}", headers=MEMBER)).status == 404


async def test_member_rules(client):
    private = await _image(client, visibility="private")
    resp = await client.post(f"/v2/images/{private}/members", json={"member": "x"}, headers=OWNER)
    assert resp.status == 403  # only shared images have members
    shared = await _image(client, visibility="shared")
    base = f"/v2/images/{shared}/members"
    assert (await client.post(base, json={"nope": 1}, headers=OWNER)).status == 400
    assert (await client.post(base, data=b"{", headers=OWNER)).status == 400
    assert (await client.get(f"{base}/nobody", headers=OWNER)).status == 404
    await client.post(base, json={"member": "proj-member"}, headers=OWNER)
    bad = await client.put(f"{base}/proj-member", json={"status": "maybe"}, headers=MEMBER)
    assert bad.status == 400


async def test_info_import_lists_the_methods_create_advertises(client):
    resp = await client.get("/v2/info/import")
    body = await resp.json()
    assert body["import-methods"]["type"] == "array"
    created = await client.post("/v2/images", json={})
    header = created.headers["OpenStack-image-import-methods"]
    assert body["import-methods"]["value"] == [m for m in header.split(",") if m]
    assert (await client.get("/v2/info/stores")).status == 404
