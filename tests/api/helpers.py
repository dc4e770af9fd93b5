"""Small request helpers shared by the in-process API tests."""
from __future__ import annotations

from typing import Any

OCTET = {"Content-Type": "application/octet-stream"}
PATCH21 = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
JSON_ACCEPT = {"Accept": "application/json"}


async def create(client: Any, **body: Any) -> dict:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    resp = await client.post("/v2/images", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def upload(client: Any, image_id: str, data: bytes, **headers: str) -> Any:
    return await client.put(f"/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})


async def active_image(client: Any, data: bytes, **body: Any) -> dict:
    image = await create(client, **body)
    resp = await upload(client, image["id"], data)
    assert resp.status == 204, await resp.text()
    return await show(client, image["id"])


async def show(client: Any, image_id: str) -> dict:
    resp = await client.get(f"/v2/images/{image_id}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


def table_field(table: str, key: str) -> str:
    """A value from glanceclient's `| Property | Value |` table."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == key:
            return cells[1]
    raise AssertionError(f"{key} not in:\n{table}")
