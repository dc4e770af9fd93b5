"""The edge itself: version discovery, request ids, Glance-style errors, routing rules."""
from __future__ import annotations

import json
import uuid

from cas_glance.api.keys import ENGINE
from cas_glance.app import create_app
from tests.api.helpers import JSON_ACCEPT


async def test_root_is_300_and_versions_is_200_with_absolute_hrefs(client):
    root = await client.get("/")
    assert root.status == 300
    versions = await client.get("/versions")
    assert versions.status == 200
    doc = await versions.json()
    assert doc == await root.json()
    current = [v for v in doc["versions"] if v["status"] == "CURRENT"]
    assert [v["id"] for v in current] == ["v2.17"]
    base = f"http://{client.server.host}:{client.server.port}/v2/"
    assert {v["links"][0]["href"] for v in doc["versions"]} == {base}


async def test_v2_and_v2_slash_serve_the_versions_document_for_the_sdk(client):
    for path in ("/v2", "/v2/"):
        resp = await client.get(path)
        assert resp.status == 200
        assert "versions" in await resp.json()


async def test_unknown_first_segment_gets_the_300_version_list(client):
    for path in ("/v1/images", "/v3", "/nonsense/deep/path"):
        resp = await client.get(path)
        assert resp.status == 300, path
        assert "versions" in await resp.json()


async def test_unknown_route_under_v2_is_404(client):
    resp = await client.get("/v2/nonsense")
    assert resp.status == 404


async def test_every_response_carries_a_request_id_errors_included(client):
    for path in ("/versions", "/v2/images/not-a-uuid", "/v2/nonsense"):
        resp = await client.get(path)
        rid = resp.headers["x-openstack-request-id"]
        assert rid.startswith("req-") and uuid.UUID(rid[4:]), path


async def test_incoming_request_id_is_echoed_and_overlong_one_refused(client):
    resp = await client.get("/versions", headers={"X-Openstack-Request-Id": "req-mine"})
    assert resp.headers["x-openstack-request-id"] == "req-mine"
    resp = await client.get("/versions", headers={"X-Openstack-Request-Id": "r" * 65})
    assert resp.status == 400
    assert resp.headers["x-openstack-request-id"].startswith("req-")


async def test_error_body_is_html_for_star_accept_as_glanceclient_sends(client):
    resp = await client.get(f"/v2/images/{uuid.uuid4()}", headers={"Accept": "*/*"})
    assert resp.status == 404
    assert resp.content_type == "text/html"
    text = await resp.text()
    assert "<h1>404 Not Found</h1>" in text and "No image found" in text


async def test_error_body_is_flat_json_for_json_accept(client):
    resp = await client.get(f"/v2/images/{uuid.uuid4()}", headers=JSON_ACCEPT)
    assert resp.content_type == "application/json"
    body = json.loads(await resp.text())
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found"
    assert "No image found" in body["message"]


async def test_error_body_is_plain_text_for_empty_accept_as_the_sdk_sends_on_put(client):
    resp = await client.get(f"/v2/images/{uuid.uuid4()}", headers={"Accept": ""})
    assert resp.content_type == "text/plain"
    assert (await resp.text()).startswith("404 Not Found\n\n")


async def test_wrong_method_is_405_with_allow(client):
    resp = await client.put("/v2/images")
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}
    assert resp.content_type == "text/html"
    resp = await client.post(f"/v2/images/{uuid.uuid4()}/file", data=b"x")
    assert resp.status == 405
    assert "PUT" in resp.headers["Allow"]


async def test_body_on_get_or_delete_is_400_but_empty_content_length_is_fine(client):
    resp = await client.get("/v2/images", data=b"{}")
    assert resp.status == 400
    resp = await client.delete(f"/v2/images/{uuid.uuid4()}", data=b"xx")
    assert resp.status == 400
    # glanceclient sends Content-Type (and sometimes Content-Length: 0) on every GET
    resp = await client.get("/v2/images", headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": "0"})
    assert resp.status == 200


async def test_schemas_are_served(client):
    for name in ("image", "images", "member", "members"):
        resp = await client.get(f"/v2/schemas/{name}")
        assert resp.status == 200
        assert (await resp.json())["name"] == name
    assert (await client.get("/v2/schemas/nope")).status == 404


async def test_unexpected_exception_is_a_glance_style_500_and_logged(client, caplog):
    engine = client.app[ENGINE]

    def boom(image_id):
        raise RuntimeError("index exploded")

    engine.index.get_image = boom
    resp = await client.get(f"/v2/images/{uuid.uuid4()}")
    assert resp.status == 500
    assert "<h1>500 Internal Server Error</h1>" in await resp.text()
    assert "index exploded" not in await resp.text()  # internals stay in the log
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    assert any("index exploded" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_public_endpoint_is_used_for_version_hrefs_and_location(aiohttp_client, cfg):
    client = await aiohttp_client(create_app(cfg.replace(public_endpoint="https://img.example:443/")))
    doc = await (await client.get("/versions")).json()
    assert {v["links"][0]["href"] for v in doc["versions"]} == {"https://img.example:443/v2/"}
    resp = await client.post("/v2/images", json={})
    assert resp.headers["Location"].startswith("https://img.example:443/v2/images/")
