"""Disk image header probing: detection, virtual size, declared-format checks."""
from __future__ import annotations

import struct

import pytest

from cas_glance.domain.formats import HEAD_SIZE, check_format, detect, virtual_size
from cas_glance.errors import UnsupportedMediaType

GIB = 1 << 30


def qcow2(size=GIB, version=3, backing=0, incompatible=0):
    head = bytearray(HEAD_SIZE)
    struct.pack_into(">4sIQ", head, 0, b"QFI\xfb", version, backing)
    struct.pack_into(">Q", head, 24, size)
    struct.pack_into(">Q", head, 72, incompatible)
    return bytes(head)


def vmdk(sectors=2048):
    head = bytearray(HEAD_SIZE)
    struct.pack_into("<4sIIQ", head, 0, b"KDMV", 1, 3, sectors)
    return bytes(head)


def vhd(size=GIB):
    head = bytearray(HEAD_SIZE)
    head[:8] = b"conectix"
    struct.pack_into(">Q", head, 48, size)
    return bytes(head)


def vdi(size=GIB):
    head = bytearray(HEAD_SIZE)
    head[:20] = b"<<< Oracle VM VirtualBox Disk Image >>>\n"[:20]
    struct.pack_into("<I", head, 0x40, 0xBEDA107F)
    struct.pack_into("<Q", head, 0x170, size)
    return bytes(head)


VHDX = b"vhdxfile" + bytes(HEAD_SIZE - 8)
RAW = bytes(range(256)) * 2


@pytest.mark.parametrize("head,fmt", [
    (qcow2(), "qcow2"), (vmdk(), "vmdk"), (b"# Disk DescriptorFile\nversion=1", "vmdk"),
    (vhd(), "vhd"), (vdi(), "vdi"), (VHDX, "vhdx"), (RAW, None), (b"", None),
    (b"QFI\xfb", None),
])
def test_detect(head, fmt):
    assert detect(head) == fmt


@pytest.mark.parametrize("fmt,head,expected", [
    ("qcow2", qcow2(5 * GIB), 5 * GIB), ("vmdk", vmdk(4096), 4096 * 512),
    ("vhd", vhd(3 * GIB), 3 * GIB), ("vdi", vdi(7 * GIB), 7 * GIB),
    ("raw", qcow2(), 1234), ("iso", RAW, 1234), ("vhdx", VHDX, None),
    ("qcow2", RAW, None), ("ami", RAW, None),
])
def test_virtual_size(fmt, head, expected):
    assert virtual_size(fmt, head, 1234) == expected


@pytest.mark.parametrize("fmt,head", [
    ("qcow2", qcow2()), ("vmdk", vmdk()), ("vhdx", VHDX), ("vdi", vdi()), ("raw", RAW),
    ("vhd", RAW), ("vhd", vhd()), ("iso", RAW), ("ami", RAW), ("qcow2", b""),
])
def test_matching_payloads_pass(fmt, head):
    check_format(fmt, "bare", head)


@pytest.mark.parametrize("fmt,head", [
    ("qcow2", RAW), ("vmdk", qcow2()), ("vhdx", RAW), ("vdi", vmdk()), ("raw", qcow2()),
    ("raw", vmdk()), ("raw", vhd()), ("qcow2", b"QFI"), ("vhd", qcow2()), ("iso", vmdk()),
    ("ami", qcow2()), ("vhdx", vhd()),
])
def test_mismatched_payloads_are_unsupported(fmt, head):
    with pytest.raises(UnsupportedMediaType):
        check_format(fmt, "bare", head)


@pytest.mark.parametrize("container", ["ovf", "ova", "docker", "compressed", None])
def test_archives_are_not_inspected(container):
    check_format("qcow2", container, RAW)


@pytest.mark.parametrize("head", [qcow2(backing=512), qcow2(incompatible=1 << 2)])
def test_unsafe_qcow2_is_refused(head):
    with pytest.raises(UnsupportedMediaType):
        check_format("qcow2", "bare", head)


def test_qcow2_v2_ignores_feature_bits():
    check_format("qcow2", "bare", qcow2(version=2, incompatible=1 << 2))
