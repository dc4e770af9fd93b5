"""Image metadata over HTTP: create, show, update, delete, tags, actions, and their errors."""
from __future__ import annotations

import json
import uuid

from tests.api.helpers import OCTET, PATCH21, active_image, create, show

ADMIN = {}
MEMBER_A = {"X-Roles": "reader,member", "X-Project-Id": "proj-a", "X-User-Id": "u-a"}
MEMBER_B = {"X-Roles": "Member", "X-Tenant-Id": "proj-b", "X-User-Id": "u-b"}


async def test_create_is_201_with_location_and_import_methods_header(client):
    resp = await client.post("/v2/images", json={"name": "n", "disk_format": "raw",
                                                 "container_format": "bare", "os_distro": "x"})
    assert resp.status == 201
    body = await resp.json()
    assert body["status"] == "queued" and body["os_distro"] == "x" and body["owner"] is None
    assert resp.headers["Location"].endswith(f"/v2/images/{body['id']}")
    assert resp.headers["Location"].startswith("http://")
    assert "OpenStack-image-import-methods" in resp.headers


async def test_create_with_caller_id_and_duplicate_is_409(client):
    iid = str(uuid.uuid4())
    assert (await client.post("/v2/images", json={"id": iid})).status == 201
    assert (await client.post("/v2/images", json={"id": iid})).status == 409
    assert (await client.post("/v2/images", json={"id": "not-a-uuid"})).status == 400


async def test_malformed_json_and_wrong_field_types_are_400(client):
    resp = await client.post("/v2/images", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await client.post("/v2/images", data=b"")).status == 400
    assert (await client.post("/v2/images", json=[1, 2])).status == 400
    assert (await client.post("/v2/images", json={"min_disk": "big"})).status == 400
    assert (await client.post("/v2/images", json={"disk_format": "floppy"})).status == 400
    assert (await client.post("/v2/images", json={"extra": 5})).status == 400


async def test_create_with_read_only_or_reserved_key_is_403(client):
    for key, value in (("status", "active"), ("size", 3), ("locations", []), ("os_glance_x", "1")):
        resp = await client.post("/v2/images", json={key: value})
        assert resp.status == 403, key


async def test_show_is_404_for_non_uuid_missing_and_invisible(client):
    assert (await client.get("/v2/images/myname")).status == 404
    assert (await client.get(f"/v2/images/{uuid.uuid4()}")).status == 404
    resp = await client.post("/v2/images", json={"name": "private"}, headers=MEMBER_A)
    image = await resp.json()
    assert image["owner"] == "proj-a"
    assert (await client.get(f"/v2/images/{image['id']}", headers=MEMBER_A)).status == 200
    assert (await client.get(f"/v2/images/{image['id']}", headers=MEMBER_B)).status == 404
    assert (await client.get(f"/v2/images/{image['id']}", headers=ADMIN)).status == 200


async def test_patch_updates_and_needs_the_exact_media_type(client):
    image = await create(client, name="a")
    ops = [{"op": "replace", "path": "/name", "value": "b"},
           {"op": "add", "path": "/os_distro", "value": "debian"}]
    resp = await client.patch(f"/v2/images/{image['id']}", data=json.dumps(ops), headers=PATCH21)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["name"] == "b" and body["os_distro"] == "debian"
    resp = await client.patch(f"/v2/images/{image['id']}", json=ops)
    assert resp.status == 415
    assert "openstack-images-v2.1-json-patch" in resp.headers["Accept-Patch"]
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    resp = await client.patch(f"/v2/images/{image['id']}", headers=v20,
                              data=json.dumps([{"replace": "/name", "value": "c"}]))
    assert resp.status == 200 and (await resp.json())["name"] == "c"


async def test_patch_errors_follow_glance(client):
    image = await create(client)
    url = f"/v2/images/{image['id']}"
    async def patch(ops):
        return (await client.patch(url, data=json.dumps(ops), headers=PATCH21)).status
    assert await patch([{"op": "replace", "path": "/status", "value": "active"}]) == 403
    assert await patch([{"op": "remove", "path": "/nope"}]) == 409
    assert await patch([{"op": "replace", "path": "/min_ram", "value": -1}]) == 400
    assert await patch({"op": "replace"}) == 400
    resp = await client.patch(url, data=b"[{", headers=PATCH21)
    assert resp.status == 400


async def test_delete_is_204_then_404_and_protected_delete_is_403(client):
    image = await create(client)
    assert (await client.delete(f"/v2/images/{image['id']}")).status == 204
    assert (await client.get(f"/v2/images/{image['id']}")).status == 404
    assert (await client.delete(f"/v2/images/{image['id']}")).status == 404
    guarded = await create(client, protected=True)
    assert (await client.delete(f"/v2/images/{guarded['id']}")).status == 403
    assert (await show(client, guarded["id"]))["status"] == "queued"


async def test_non_owner_cannot_modify_a_visible_public_image(client):
    image = await create(client, visibility="public")
    url = f"/v2/images/{image['id']}"
    assert (await client.get(url, headers=MEMBER_B)).status == 200
    assert (await client.delete(url, headers=MEMBER_B)).status == 403
    assert (await client.put(f"{url}/tags/t", headers=MEMBER_B)).status == 403
    resp = await client.put(f"{url}/file", data=b"x", headers={**OCTET, **MEMBER_B})
    assert resp.status == 403


async def test_tags_add_is_idempotent_and_delete_of_absent_tag_is_404(client):
    image = await create(client)
    url = f"/v2/images/{image['id']}/tags"
    for _ in range(2):
        resp = await client.put(f"{url}/blue", headers={**OCTET, "Content-Length": "0"})
        assert resp.status == 204
    assert (await show(client, image["id"]))["tags"] == ["blue"]
    assert (await client.delete(f"{url}/blue")).status == 204
    assert (await client.delete(f"{url}/blue")).status == 404
    assert (await client.put(f"{url}/{'x' * 256}")).status == 400


async def test_deactivate_reactivate_and_their_403s(client):
    image = await active_image(client, b"payload")
    url = f"/v2/images/{image['id']}"
    assert (await client.post(f"{url}/actions/deactivate", headers=MEMBER_A)).status == 403
    assert (await client.post(f"{url}/actions/deactivate")).status == 204
    assert (await client.post(f"{url}/actions/deactivate")).status == 204  # no-op repeat
    assert (await show(client, image["id"]))["status"] == "deactivated"
    # non-admin download of a deactivated image: 403, admin still may
    assert (await client.get(f"{url}/file", headers=MEMBER_A)).status == 403
    resp = await client.get(f"{url}/file")
    assert resp.status == 200 and await resp.read() == b"payload"
    assert (await client.post(f"{url}/actions/reactivate")).status == 204
    assert (await show(client, image["id"]))["status"] == "active"
    queued = await create(client)
    resp = await client.post(f"/v2/images/{queued['id']}/actions/deactivate")
    assert resp.status == 403


async def test_tasks_list_is_empty_and_location_api_is_403(client):
    image = await create(client)
    resp = await client.get(f"/v2/images/{image['id']}/tasks")
    assert resp.status == 200 and await resp.json() == {"tasks": []}
    url = f"/v2/images/{image['id']}/locations"
    assert (await client.get(url)).status == 403
    assert (await client.post(url, json={"url": "file:///x", "validation_data": {}})).status == 403
    assert (await client.get(f"/v2/images/{uuid.uuid4()}/tasks")).status == 404
    ops = [{"op": "add", "path": "/locations/-", "value": {"url": "file:///x", "metadata": {}}}]
    resp = await client.patch(f"/v2/images/{image['id']}", data=json.dumps(ops), headers=PATCH21)
    assert resp.status == 403
