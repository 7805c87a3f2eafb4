"""The console's signing key: one per site, even when several processes create it at once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from web.security import read_or_create_secret


def test_a_process_that_loses_the_race_uses_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret_key"
    theirs = b"k" * 64
    real = os.urandom

    def other_process_writes_first(n: int) -> bytes:
        # another console started at the same moment creates the key after our read
        # found none and before we put ours in place
        if not path.exists():
            path.write_bytes(theirs)
        return real(n)

    monkeypatch.setattr(os, "urandom", other_process_writes_first)
    assert read_or_create_secret(path) == theirs
    assert path.read_bytes() == theirs
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left


def test_a_new_key_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"
    key = read_or_create_secret(path)
    assert len(key) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create_secret(path) == key


def test_a_short_key_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_bytes(b"short")
    key = read_or_create_secret(path)
    assert len(key) == 64 and path.read_bytes() == key
