"""The shipped sample config and systemd unit: the sample loads, sets only defaults, and
mentions every key config.py reads; the unit starts `cas-glance serve` and stops it with
SIGTERM."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

from cas_glance import config

ETC = Path(__file__).resolve().parents[2] / "etc"


def test_sample_config_loads_and_equals_the_defaults():
    cfg = config.load_ini(ETC / "cas-glance.conf")
    assert cfg == config.load_ini(None)


def test_sample_config_mentions_every_key_config_reads():
    text = (ETC / "cas-glance.conf").read_text()
    tables = {"DEFAULT": config._GLANCE_DEFAULT, "glance_store": config._GLANCE_STORE,
              "cas": config._CAS}
    sections = re.split(r"^\[(\w+)\]\s*$", text, flags=re.MULTILINE)
    found = {name: body for name, body in zip(sections[1::2], sections[2::2])}
    for section, table in tables.items():
        for key in table:
            assert re.search(rf"^#?{key} =", found[section], flags=re.MULTILINE), f"[{section}] {key}"


def test_systemd_unit_runs_serve_and_stops_with_sigterm():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ETC / "cas-glance.service")
    assert " serve " in unit["Service"]["ExecStart"] + " "
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert int(unit["Service"]["TimeoutStopSec"]) > 2 * 10  # twice the default grace
