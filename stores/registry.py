"""build_store(cfg): the one place that turns configuration into a BlobStore.

An explicit table maps `default_store` to a builder; nothing registers itself at import time.
Remote backends are imported only when chosen (so a filesystem deployment never loads boto3
or swiftclient) and are wrapped in RetryingStore, because their failures are often transient.
The log line names the store and where it lives, never a credential.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from stores.base import BlobStore
from stores.fs import FilesystemStore
from stores.pack import PackStore
from stores.wrappers import RetryingStore

if TYPE_CHECKING:  # annotations only: stores never imports cas_glance at run time
    from cas_glance.config import Config

log = logging.getLogger(__name__)

DIRECT_IO = {"auto": None, "on": True, "off": False}  # config direct_io -> PackStore(direct_io=)


def _without_userinfo(url: str) -> str:
    """The URL with any user:password@ removed, for logging."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _file(cfg: Config) -> BlobStore:
    log.info("blob store: file at %s (%s, fsync=%s)", cfg.blob_dir, cfg.file_layout, cfg.fsync)
    if cfg.file_layout == "files":
        return FilesystemStore(cfg.blob_dir, cfg.fsync)
    return PackStore(cfg.blob_dir, cfg.fsync, direct_io=DIRECT_IO[cfg.direct_io])


def _s3(cfg: Config) -> BlobStore:
    from stores.s3 import S3Store

    log.info("blob store: s3 at %s, bucket %s", _without_userinfo(cfg.s3.host) or "aws",
             cfg.s3.bucket)
    return RetryingStore(S3Store.from_config(cfg.s3))


def _swift(cfg: Config) -> BlobStore:
    from stores.swift import SwiftStore

    log.info("blob store: swift at %s (auth v%s), container %s",
             _without_userinfo(cfg.swift.auth_address), cfg.swift.auth_version,
             cfg.swift.container)
    return RetryingStore(SwiftStore.from_config(cfg.swift))


BUILDERS: Mapping[str, Callable[["Config"], BlobStore]] = {
    "file": _file,
    "s3": _s3,
    "swift": _swift,
}


def build_store(cfg: Config) -> BlobStore:
    """The store `cfg.default_store` names; ValueError for a name without a builder."""
    try:
        builder = BUILDERS[cfg.default_store]
    except KeyError:
        raise ValueError(f"default_store: no such store {cfg.default_store!r} "
                         f"(one of {', '.join(BUILDERS)})") from None
    return builder(cfg)
