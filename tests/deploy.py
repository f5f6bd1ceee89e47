"""The committed files in deploy/, read and rendered as an administrator would."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
NGINX_SITE = DEPLOY / "nginx" / "portal.conf"
ENV_FILE = DEPLOY / "portal.env"
# Where the units expect the checkout (its .venv and instance/ inside).
INSTALL_DIR = "/srv/portal"
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def render(path: Path, **values: str) -> str:
    """The file with each @NAME@ replaced; every placeholder must get a value."""
    text = path.read_text()
    wanted = set(PLACEHOLDER.findall(text))
    missing, unused = wanted - values.keys(), values.keys() - wanted
    assert not missing and not unused, f"{path.name}: missing {missing}, unused {unused}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, blank lines
    and whole-value single quotes)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"bad line: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        env[key] = value
    return env


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read_string(path.read_text(), source=str(path))
    return unit
