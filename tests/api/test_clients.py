"""Real clients against a real `cas-glance serve` process: python-glanceclient's CLI and
openstacksdk must not be able to tell us from Glance."""
from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from tests.api.helpers import table_field

IMAGE = os.urandom(3 << 20) + bytes(1 << 20) + os.urandom(123_457)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.raw"
    path.write_bytes(IMAGE)
    return path


def test_glanceclient_full_lifecycle(glance, image_file, tmp_path):
    out = glance.run("image-create", "--name", "cli-img", "--disk-format", "raw",
                     "--container-format", "bare", "--property", "os_distro=debian",
                     "--property", "foo=bar", "--file", str(image_file)).stdout
    iid = table_field(out, "id")
    assert table_field(out, "status") == "active"
    assert table_field(out, "size") == str(len(IMAGE))
    assert table_field(out, "checksum") == hashlib.md5(IMAGE).hexdigest()

    assert iid in glance.run("image-list").stdout
    shown = glance.run("image-show", iid).stdout
    assert table_field(shown, "os_distro") == "debian" and table_field(shown, "foo") == "bar"

    target = tmp_path / "out.raw"
    glance.run("image-download", "--file", str(target), iid)  # verifies os_hash_value itself
    assert target.read_bytes() == IMAGE

    out = glance.run("image-update", "--name", "renamed", "--min-disk", "2", "--property",
                     "newp=1", "--remove-property", "foo", iid).stdout
    assert table_field(out, "name") == "renamed" and table_field(out, "min_disk") == "2"
    assert table_field(out, "newp") == "1" and "| foo " not in out

    glance.run("image-tag-update", iid, "blue")
    glance.run("image-tag-update", iid, "green")
    glance.run("image-tag-delete", iid, "blue")
    assert json.loads(table_field(glance.run("image-show", iid).stdout, "tags")) == ["green"]

    glance.run("image-deactivate", iid)
    assert table_field(glance.run("image-show", iid).stdout, "status") == "deactivated"
    glance.run("image-reactivate", iid)
    assert table_field(glance.run("image-show", iid).stdout, "status") == "active"

    glance.run("image-delete", iid)
    gone = glance.run("image-show", iid, check=False)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_glanceclient_discovers_version_and_fetches_schema(glance, image_file):
    out = glance.run("image-create", "--name", "discovered", "--disk-format", "raw",
                     "--container-format", "bare", "--file", str(image_file), version=None).stdout
    assert table_field(out, "status") == "active"
    assert (glance.home / ".glanceclient" / "image_schema.json").exists()
    assert "discovered" in glance.run("image-list", version=None).stdout


def test_glanceclient_errors_are_readable(glance):
    proc = glance.run("image-show", "00000000-0000-0000-0000-000000000000", check=False)
    assert proc.returncode == 1
    assert "No image found" in proc.stderr and "Traceback" not in proc.stderr
    out = glance.run("image-create", "--name", "q", "--disk-format", "raw",
                     "--container-format", "bare", close_stdin=True).stdout
    assert table_field(out, "status") == "queued"
    iid = table_field(out, "id")
    proc = glance.run("image-download", "--file", os.devnull, iid, check=False)
    assert proc.returncode == 1 and "no data" in proc.stderr.lower()
    glance.run("image-update", "--protected", "True", iid)
    proc = glance.run("image-delete", iid, check=False)
    assert proc.returncode == 1 and "not permitted" in proc.stderr  # how it words a 403


def _post_image(server, name: str) -> str:
    req = urllib.request.Request(f"{server.url}/v2/images", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return str(json.load(resp)["id"])


def test_glanceclient_lists_across_pages(glance, live_server):
    ids = {_post_image(live_server, f"page-{i}") for i in range(7)}
    # --page-size 2: glanceclient follows `next` verbatim until it disappears
    proc = glance.run("--debug", "image-list", "--page-size", "2")
    listed = set(re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", proc.stdout))
    assert ids <= listed
    assert proc.stderr.count("marker=") >= 3  # it really paged


def test_openstacksdk_lifecycle(live_server, image_file, tmp_path):
    import openstack

    conn = openstack.connect(auth_type="none", auth={"endpoint": live_server.url},
                             load_yaml_config=False, load_envvars=False)
    image = conn.create_image("sdk-img", filename=str(image_file), disk_format="raw",
                              container_format="bare", wait=True)
    assert image.status == "active"
    assert image.checksum == hashlib.md5(IMAGE).hexdigest()
    assert any(i.id == image.id for i in conn.image.images())
    assert image.id in {i.id for i in conn.image.images(name="sdk-img")}
    target = tmp_path / "sdk.raw"
    conn.download_image(image.id, output_file=str(target))
    assert target.read_bytes() == IMAGE
    conn.image.update_image(image.id, name="sdk-renamed", os_distro="fedora")
    again = conn.image.get_image(image.id)
    assert again.name == "sdk-renamed" and again.os_distro == "fedora"
    conn.image.add_tag(image, "t1")
    assert "t1" in conn.image.get_image(image.id).tags
    assert conn.delete_image(image.id, wait=True)
    assert conn.image.find_image(image.id) is None


def test_openstacksdk_with_v2_endpoint(live_server):
    import openstack

    conn = openstack.connect(auth_type="none", auth={"endpoint": live_server.url + "/v2"},
                             load_yaml_config=False, load_envvars=False)
    assert isinstance(list(conn.image.images()), list)
    json.dumps([i.to_dict() for i in conn.image.images()], default=str)


def test_glanceclient_members(glance, live_server):
    iid = _post_image(live_server, "to-share")
    out = glance.run("member-create", iid, "proj-x").stdout
    assert "proj-x" in out and "pending" in out
    glance.run("member-update", iid, "proj-x", "accepted")
    listed = glance.run("member-list", "--image-id", iid).stdout
    assert "proj-x" in listed and "accepted" in listed
    glance.run("member-delete", iid, "proj-x")
    assert "proj-x" not in glance.run("member-list", "--image-id", iid).stdout


def test_openstacksdk_follows_next_across_pages(live_server):
    import openstack

    ids = {_post_image(live_server, f"sdk-page-{i}") for i in range(5)}
    conn = openstack.connect(auth_type="none", auth={"endpoint": live_server.url},
                             load_yaml_config=False, load_envvars=False)
    before = live_server.log().count("limit=2&marker=")
    seen = [i.id for i in conn.image.images(limit=2)]
    assert ids <= set(seen) and len(seen) == len(set(seen))
    assert live_server.log().count("limit=2&marker=") - before >= 2  # it really paged
