"""One typed, frozen configuration object, read from an INI file.

The file understands the keys operators already have in glance-api.conf ([DEFAULT] and
[glance_store]) and our own [cas] section. Unknown [cas] keys are errors that name the key (a
typo must not silently fall back to a default); Glance keys we do not implement are logged once
and ignored, so an operator can point us at their existing glance-api.conf.
Secrets are excluded from repr() so they never reach a log line.
"""
from __future__ import annotations

import configparser
import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

STORES = ("file", "s3", "swift")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the reason."""


def default_data_dir() -> Path:
    env = os.environ.get("CAS_GLANCE_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cas-glance"


@dataclass(frozen=True)
class S3Config:
    host: str = ""  # endpoint URL, e.g. http://127.0.0.1:8080
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    bucket: str = "glance"
    create_bucket_on_put: bool = False
    bucket_url_format: str = "path"  # path | virtual | auto
    region_name: str = "us-east-1"
    max_pool_connections: int = 32


@dataclass(frozen=True)
class SwiftConfig:
    auth_address: str = ""
    user: str = ""  # "project:user" as in glance_store
    key: str = field(default="", repr=False)
    auth_version: str = "3"  # "1" (tempauth) or "3" (Keystone v3)
    container: str = "glance"
    create_container_on_put: bool = False
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region: str = ""
    max_connections: int = 32


@dataclass(frozen=True)
class Config:
    # service
    host: str = "127.0.0.1"
    port: int = 9292
    public_endpoint: str = ""  # absolute base URL advertised in version documents
    data_dir: Path = field(default_factory=default_data_dir)
    auth_strategy: str = "noauth"  # noauth: trusted X-Roles/X-Project-Id headers, else admin
    # Glance behaviour
    hashing_algorithm: str = "sha512"
    image_size_cap: int = 1 << 40
    delayed_delete: bool = False
    scrub_time: int = 0  # seconds a pending_delete image keeps its data
    wakeup_time: int = 300  # seconds between collector runs inside `serve`
    # storage
    default_store: str = "file"
    filesystem_store_datadir: Path | None = None  # default: <data_dir>/blobs
    fsync: str = "batch"  # always | batch | never
    file_layout: str = "packs"  # packs (blobs appended to pack files) | files (one per blob)
    direct_io: str = "auto"  # packs written/read with O_DIRECT: auto (where the fs takes it) | on | off
    s3: S3Config = field(default_factory=S3Config)
    swift: SwiftConfig = field(default_factory=SwiftConfig)
    # engine
    chunk_min: int = 16 * 1024
    chunk_avg: int = 64 * 1024
    chunk_max: int = 256 * 1024
    zstd_level: int = 3
    io_threads: int = 16  # store calls (latency bound: many in flight)
    cpu_threads: int = 4  # chunking, hashing, compression (GIL released)
    gc_grace_seconds: int = 3600
    orphan_sweep_interval: int = 86400  # seconds between full-store orphan sweeps in `serve`
    index_map_size: int = 1 << 30  # initial LMDB map size; grows on demand

    @property
    def blob_dir(self) -> Path:
        return Path(self.filesystem_store_datadir or (self.data_dir / "blobs"))

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def replace(self, **changes: Any) -> "Config":
        return validate(dataclasses.replace(self, **changes))


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected a boolean, got {value!r}")


def _int(key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None


# glance-api.conf key -> (our field, parser). Sections: [DEFAULT] and [glance_store].
_GLANCE_DEFAULT: Mapping[str, tuple[str, Any]] = {
    "bind_host": ("host", str),
    "bind_port": ("port", _int),
    "public_endpoint": ("public_endpoint", str),
    "hashing_algorithm": ("hashing_algorithm", str),
    "image_size_cap": ("image_size_cap", _int),
    "delayed_delete": ("delayed_delete", _bool),
    "scrub_time": ("scrub_time", _int),
    "wakeup_time": ("wakeup_time", _int),
    "auth_strategy": ("auth_strategy", str),
}
_GLANCE_STORE: Mapping[str, tuple[str, Any]] = {
    "default_store": ("default_store", str),
    "filesystem_store_datadir": ("filesystem_store_datadir", Path),
    "s3_store_host": ("s3.host", str),
    "s3_store_access_key": ("s3.access_key", str),
    "s3_store_secret_key": ("s3.secret_key", str),
    "s3_store_bucket": ("s3.bucket", str),
    "s3_store_create_bucket_on_put": ("s3.create_bucket_on_put", _bool),
    "s3_store_bucket_url_format": ("s3.bucket_url_format", str),
    "s3_store_region_name": ("s3.region_name", str),
    "swift_store_auth_address": ("swift.auth_address", str),
    "swift_store_user": ("swift.user", str),
    "swift_store_key": ("swift.key", str),
    "swift_store_auth_version": ("swift.auth_version", str),
    "swift_store_container": ("swift.container", str),
    "swift_store_create_container_on_put": ("swift.create_container_on_put", _bool),
    "swift_store_user_domain_name": ("swift.user_domain_name", str),
    "swift_store_project_domain_name": ("swift.project_domain_name", str),
    "swift_store_region": ("swift.region", str),
}
_CAS: Mapping[str, tuple[str, Any]] = {
    "data_dir": ("data_dir", Path),
    "fsync": ("fsync", str),
    "file_layout": ("file_layout", str),
    "direct_io": ("direct_io", str),
    "chunk_min": ("chunk_min", _int),
    "chunk_avg": ("chunk_avg", _int),
    "chunk_max": ("chunk_max", _int),
    "zstd_level": ("zstd_level", _int),
    "io_threads": ("io_threads", _int),
    "cpu_threads": ("cpu_threads", _int),
    "gc_grace_seconds": ("gc_grace_seconds", _int),
    "orphan_sweep_interval": ("orphan_sweep_interval", _int),
    "index_map_size": ("index_map_size", _int),
    "s3_max_pool_connections": ("s3.max_pool_connections", _int),
    "swift_max_connections": ("swift.max_connections", _int),
}


def _apply(values: dict[str, Any]) -> Config:
    """Build a Config from dotted field names ("s3.bucket") to parsed values."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"s3": {}, "swift": {}}
    for name, value in values.items():
        if "." in name:
            group, sub = name.split(".", 1)
            nested[group][sub] = value
        else:
            top[name] = value
    return validate(Config(s3=S3Config(**nested["s3"]), swift=SwiftConfig(**nested["swift"]), **top))


def validate(cfg: Config) -> Config:
    """Reject values no part of the service could work with; name the key."""
    if cfg.default_store not in STORES:
        raise ConfigError(f"default_store: must be one of {', '.join(STORES)}, got {cfg.default_store!r}")
    if cfg.fsync not in ("always", "batch", "never"):
        raise ConfigError(f"fsync: must be always, batch or never, got {cfg.fsync!r}")
    if cfg.file_layout not in ("packs", "files"):
        raise ConfigError(f"file_layout: must be packs or files, got {cfg.file_layout!r}")
    if cfg.direct_io not in ("auto", "on", "off"):
        raise ConfigError(f"direct_io: must be auto, on or off, got {cfg.direct_io!r}")
    try:
        hashlib.new(cfg.hashing_algorithm)
    except ValueError:
        # glanceclient verifies every download with hashlib.new(os_hash_algo)
        raise ConfigError(f"hashing_algorithm: hashlib does not know {cfg.hashing_algorithm!r}") from None
    if cfg.auth_strategy not in ("noauth",):
        raise ConfigError(f"auth_strategy: only 'noauth' is supported, got {cfg.auth_strategy!r}")
    for key in ("image_size_cap", "port", "io_threads", "cpu_threads"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{key}: must be positive")
    for key in ("scrub_time", "wakeup_time", "gc_grace_seconds", "orphan_sweep_interval"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key}: must not be negative")
    if cfg.s3.bucket_url_format not in ("path", "virtual", "auto"):
        raise ConfigError("s3_store_bucket_url_format: must be path, virtual or auto")
    if cfg.swift.auth_version not in ("1", "2", "3"):
        raise ConfigError("swift_store_auth_version: must be 1, 2 or 3")
    return cfg


def load_ini(path: str | os.PathLike[str] | None, **overrides: Any) -> Config:
    """Read `path` (None: embedded defaults only) and apply keyword overrides (CLI flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
        if not parser.read(path):
            raise ConfigError(f"config file {path}: cannot be read")
        for section in parser.sections():
            table = {"DEFAULT": _GLANCE_DEFAULT, "glance_store": _GLANCE_STORE, "cas": _CAS}.get(section)
            for key, raw in parser.items(section):
                if table is None:
                    log.warning("config: section [%s] is not used by cas-glance; ignored", section)
                    break
                if key not in table:
                    if section == "cas":
                        raise ConfigError(f"[cas] {key}: unknown key")
                    log.warning("config: [%s] %s is not supported by cas-glance; ignored", section, key)
                    continue
                name, parse = table[key]
                values[name] = parse(key, raw) if parse not in (str, Path) else parse(raw.strip())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _apply(values)
