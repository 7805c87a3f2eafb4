"""The shipped systemd units: the right commands, notify type, user and hardening."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def load(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize(
    ("name", "unit_type", "command"),
    [
        ("nyutai-controller.service", "notify", "controller --config /etc/nyutai/site.toml"),
        ("nyutai-web.service", "simple", "web --config /etc/nyutai/site.toml"),
    ],
)
def test_unit_runs_the_command_as_a_dedicated_hardened_user(
    name: str, unit_type: str, command: str
) -> None:
    service = load(name)["Service"]
    assert service["Type"] == unit_type
    assert service["ExecStart"].endswith("/nyutai " + command)
    assert service["User"] == "nyutai"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/nyutai"
    assert service["PrivateTmp"] == "yes"


def test_controller_may_reach_serial_and_gpio() -> None:
    groups = load("nyutai-controller.service")["Service"]["SupplementaryGroups"].split()
    assert {"dialout", "gpio"} <= set(groups)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", ["nyutai-controller.service", "nyutai-web.service"])
def test_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    # verify insists the binary exists: point ExecStart at one that does, keep the rest.
    text = (UNITS / name).read_text(encoding="utf-8")
    text = text.replace("/opt/nyutai/venv/bin/nyutai", shutil.which("true") or "/bin/true")
    unit = tmp_path / name
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
