"""Config: glance-api.conf keys are understood, our own typos are refused, secrets stay hidden."""
import logging

import pytest

from cas_glance.config import ConfigError, load_ini


def write(tmp_path, text):
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return path


def test_embedded_defaults_serve_glance_port_on_loopback_with_file_store():
    cfg = load_ini(None)
    assert (cfg.host, cfg.port, cfg.default_store) == ("127.0.0.1", 9292, "file")
    assert cfg.hashing_algorithm == "sha512"
    assert cfg.blob_dir == cfg.data_dir / "blobs"


def test_glance_store_keys_are_read(tmp_path):
    path = write(tmp_path, """
[DEFAULT]
bind_port = 9393
delayed_delete = true
image_size_cap = 1048576
[glance_store]
default_store = s3
s3_store_host = http://127.0.0.1:8080
s3_store_access_key = test:tester
s3_store_secret_key = s3cr3t-value
s3_store_bucket = images-cas-test
s3_store_create_bucket_on_put = True
""")
    cfg = load_ini(path)
    assert cfg.port == 9393 and cfg.delayed_delete is True and cfg.image_size_cap == 1 << 20
    assert cfg.default_store == "s3"
    assert cfg.s3.bucket == "images-cas-test" and cfg.s3.create_bucket_on_put is True
    assert "s3cr3t-value" not in repr(cfg)


def test_unknown_cas_key_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, "[cas]\nchunk_avgg = 65536\n")
    with pytest.raises(ConfigError, match="chunk_avgg"):
        load_ini(path)


def test_unsupported_glance_key_is_logged_not_fatal(tmp_path, caplog):
    path = write(tmp_path, "[glance_store]\nrbd_store_pool = images\n")
    with caplog.at_level(logging.WARNING):
        cfg = load_ini(path)
    assert cfg.default_store == "file"
    assert "rbd_store_pool" in caplog.text


@pytest.mark.parametrize(
    "text, key",
    [
        ("[DEFAULT]\nhashing_algorithm = blake3\n", "hashing_algorithm"),
        ("[glance_store]\ndefault_store = rbd\n", "default_store"),
        ("[DEFAULT]\nbind_port = nine\n", "bind_port"),
        ("[DEFAULT]\ndelayed_delete = maybe\n", "delayed_delete"),
        ("[cas]\ndirect_io = yes\n", "direct_io"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key):
        load_ini(write(tmp_path, text))


def test_cli_overrides_win_over_the_file(tmp_path):
    cfg = load_ini(write(tmp_path, "[DEFAULT]\nbind_port = 9393\n"), port=9494, data_dir=tmp_path)
    assert cfg.port == 9494 and cfg.data_dir == tmp_path
