"""Disk image headers: which format the first bytes of an upload are, the virtual size they
declare, and whether they match the declared ``disk_format``.

Pure functions over the first ``HEAD_SIZE`` bytes of the data (the caller keeps them while
streaming). Invariants: never guesses from fewer bytes than a format's magic needs (a short
head is "unknown", i.e. raw); only ``container_format=bare`` payloads are inspected (ovf, ova,
docker and compressed are archives); an empty payload is always acceptable (a 0-byte upload is
a valid image). Mirrors Glance's upload-time format check (``require_image_format_match``):
a qcow2/vmdk/vhdx/vdi declaration must match the content, and any other declaration (raw,
iso, vhd, ami, ...) must not carry a different format's header. A qcow2 that points at a
backing or external data file is refused.
"""
from __future__ import annotations

import struct

from cas_glance.errors import UnsupportedMediaType

HEAD_SIZE = 512
SECTOR = 512

QCOW2_MAGIC = b"QFI\xfb"
VMDK_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
VHDX_MAGIC = b"vhdxfile"
VHD_COOKIE = b"conectix"
VDI_SIGNATURE = 0xBEDA107F
#: Formats whose header proves what they are; declaring one of them requires that header.
CHECKED = frozenset({"qcow2", "vmdk", "vhdx", "vdi"})
_QCOW2_DATA_FILE = 1 << 2  # incompatible feature bit: external data file


def detect(head: bytes) -> str | None:
    """The format ``head`` starts with (qcow2, vmdk, vhdx, vhd, vdi), or None (raw/unknown)."""
    if head.startswith(QCOW2_MAGIC) and len(head) >= 32:
        return "qcow2"
    if head.startswith(VMDK_MAGIC) or head.startswith(VMDK_DESCRIPTOR):
        return "vmdk"
    if head.startswith(VHDX_MAGIC):
        return "vhdx"
    if head.startswith(VHD_COOKIE):
        return "vhd"
    if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == VDI_SIGNATURE:
        return "vdi"
    return None


def virtual_size(disk_format: str | None, head: bytes, size: int) -> int | None:
    """The guest-visible disk size: ``size`` for raw and iso, the header's value for qcow2,
    sparse vmdk, dynamic vhd and vdi, else None (unknown, as Glance reports it)."""
    if disk_format in ("raw", "iso"):
        return size
    found = detect(head)
    if found != disk_format:
        return None
    if found == "qcow2":
        return int(struct.unpack_from(">Q", head, 24)[0])
    if found == "vmdk" and head.startswith(VMDK_MAGIC) and len(head) >= 20:
        return int(struct.unpack_from("<Q", head, 12)[0]) * SECTOR
    if found == "vhd" and len(head) >= 56:
        return int(struct.unpack_from(">Q", head, 48)[0])
    if found == "vdi" and len(head) >= 0x178:
        return int(struct.unpack_from("<Q", head, 0x170)[0])
    return None


def check_format(disk_format: str | None, container_format: str | None, head: bytes) -> None:
    """Raise ``UnsupportedMediaType`` when a bare payload contradicts its ``disk_format`` or is
    an unsafe qcow2 (backing file, external data file)."""
    if container_format != "bare" or not head:
        return
    found = detect(head)
    if (disk_format in CHECKED or found is not None) and found != disk_format:
        raise UnsupportedMediaType(
            f"Image data does not match the declared disk_format {disk_format} "
            f"(detected: {found or 'raw'}).")
    if found == "qcow2":
        _check_qcow2_safety(head)


def _check_qcow2_safety(head: bytes) -> None:
    backing_offset = struct.unpack_from(">Q", head, 8)[0]
    if backing_offset:
        raise UnsupportedMediaType("qcow2 images with a backing file are not accepted.")
    version = struct.unpack_from(">I", head, 4)[0]
    if version >= 3 and len(head) >= 80:
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        if incompatible & _QCOW2_DATA_FILE:
            raise UnsupportedMediaType("qcow2 images with an external data file are not "
                                       "accepted.")
