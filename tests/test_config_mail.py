"""The site file's [mail] section: ``from`` (a Python keyword) maps to the sender; mistakes
name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.config import ConfigError, load_config


def _site(tmp_path: Path, mail: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(f"[mail]\n{mail}\n", encoding="utf-8")
    return p


def test_mail_section_is_read(tmp_path: Path) -> None:
    cfg = load_config(
        _site(tmp_path, 'host = "smtp.example.jp"\nfrom = "nyutai@example.jp"\nsecurity = "ssl"')
    )
    assert cfg.mail.host == "smtp.example.jp" and cfg.mail.sender == "nyutai@example.jp"
    assert cfg.mail.effective_port == 465
    assert load_config(_site(tmp_path, "")).mail.host == ""  # none: recorded, not sent


@pytest.mark.parametrize(
    ("mail", "key"),
    [
        ('host = "smtp.example.jp"', "mail.from"),
        ('host = "h"\nfrom = "a@b"\nsecurity = "tls"', "mail.security"),
        ('sender = "a@b"', "mail.sender"),
        ('host = "h"\nfrom = "a@b"\npassword_file = "pw"', "mail.user"),
        ('port = "25"', "mail.port"),
    ],
)
def test_mail_mistakes_name_the_key(tmp_path: Path, mail: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_site(tmp_path, mail))
    assert err.value.key == key
