"""A site file naming all four schemes loads, and ``nyutai readers probe`` reports each reader."""

from __future__ import annotations

import os
import socket
import threading
import time
import tty
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.config import ConfigError, load_config
from nyutai.cli import main
from readers.frames.rdm6300 import build_rdm6300
from readers.registry import check_site_readers


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site(tmp_path: Path, readers: dict[str, str]) -> Path:
    lines = []
    for rid, url in readers.items():
        lines += [f"[readers.{rid}]", f"url = {url!r}", "debounce_seconds = 1.5", ""]
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.slow
def test_probe_lists_every_reader_with_state_and_last_card(tmp_path: Path) -> None:
    key = tmp_path / "osdp.key"
    key.write_text("00112233445566778899aabbccddeeff")
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    path = site(
        tmp_path,
        {
            "front-in": "sim:front-in",
            "em-in": f"serial:{os.ttyname(slave)}?format=rdm6300",
            "nfc-in": f"nfc:udp:localhost:{free_udp_port()}?targets=felica",
            "osdp-in": f"osdp:{tmp_path / 'no-such-tty'}?address=1&scbk={key}",
        },
    )
    cfg = load_config(path)
    assert {r.url.split(":")[0] for r in cfg.readers.values()} == {"sim", "serial", "nfc", "osdp"}
    assert cfg.readers["em-in"].debounce_seconds == 1.5

    def tap() -> None:
        time.sleep(1.0)
        os.write(master, b"\x02garbage" + build_rdm6300("0A1B2C3D4E") + build_rdm6300("0A1B2C3D4E"))

    writer = threading.Thread(target=tap)
    writer.start()
    try:
        result = CliRunner().invoke(
            main, ["readers", "probe", "--config", str(path), "--seconds", "2.5"]
        )
    finally:
        writer.join()
        os.close(master)
        os.close(slave)
    out = result.output
    assert result.exit_code == 1, out  # one reader is offline
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "online" in rows["front-in"]
    assert "online" in rows["nfc-in"]
    assert "online" in rows["em-in"] and "0A1B2C3D4E" in rows["em-in"]
    assert "truncated=1" in rows["em-in"]
    assert "offline (cannot open" in rows["osdp-in"]
    assert out.count("[em-in] card em4100 0A1B2C3D4E") == 1  # debounced
    assert "00112233445566778899aabbccddeeff" not in out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("serial:/dev/ttyUSB0?format=rdm6301", "unknown format='rdm6301'"),
        ("serial:/dev/ttyUSB0?format=line&baud=fast", "baud='fast'"),
        ("nfc:usb:zz", "not an nfcpy device path"),
        ("osdp:/dev/ttyUSB0?address=1", "scbk=KEYFILE is required"),
        ("wiegand:/dev/gpio", "unknown scheme 'wiegand'"),
    ],
)
def test_bad_reader_url_is_a_config_error_naming_the_reader(
    tmp_path: Path, url: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_site_readers(load_config(site(tmp_path, {"door-in": url})))
    assert info.value.key == "readers.door-in.url"
    assert expected in str(info.value)


def test_probe_config_error_is_reported(tmp_path: Path) -> None:
    path = site(tmp_path, {"door-in": "serial:/dev/ttyUSB0?format=nope"})
    result = CliRunner().invoke(main, ["readers", "probe", "--config", str(path)])
    assert result.exit_code != 0
    assert "readers.door-in.url" in result.output and "format='nope'" in result.output
