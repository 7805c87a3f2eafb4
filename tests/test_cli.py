"""The command line against real processes sharing the database (the contract between them)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.engine import make_engine, make_session_factory, session_scope
from db.models import Event
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.cli import main
from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD, seed_people

ROOT = Path(__file__).resolve().parents[1]


def nyutai(
    *args: str, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nyutai", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=input,
        cwd=ROOT,
    )


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    site = tmp_path / "site.toml"
    shutil.copyfile(DEMO_SITE, site)
    return site


@pytest.fixture
def running_controller(site_file: Path) -> Iterator[Path]:
    assert nyutai("db", "upgrade", "--config", str(site_file)).returncode == 0
    cfg = load_config(site_file)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        seed_people(s, cfg)
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nyutai", "controller", "--config", str(site_file)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield site_file
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "every strike is locked" in err


def test_tap_at_a_running_controller(running_controller: Path) -> None:
    site = str(running_controller)
    granted = nyutai(
        "tap", "--config", site, "--reader", "sr-in", "--card", DEMO_CARDS["yamada"][1]
    )
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout.startswith("granted\tgranted")
    expired = nyutai(
        "tap", "--config", site, "--reader", "mn-back-in", "--card", DEMO_CARDS["suzuki"][1]
    )
    assert "training_expired" in expired.stdout and "研修" in expired.stdout
    unknown = nyutai("tap", "--config", site, "--reader", "sr-in", "--card", UNKNOWN_CARD.lower())
    assert "unknown_card" in unknown.stdout
    engine = make_engine(load_config(running_controller).database_url)
    with session_scope(make_session_factory(engine)) as s:
        row = s.scalar(select(Event).where(Event.reason == "unknown_card"))
        assert row is not None and row.raw_card_id == UNKNOWN_CARD
    engine.dispose()


def test_tap_without_a_controller_says_so(site_file: Path) -> None:
    assert nyutai("db", "upgrade", "--config", str(site_file)).returncode == 0
    result = nyutai(
        "tap",
        "--config",
        str(site_file),
        "--reader",
        "sr-in",
        "--card",
        "0102030405060708",
        "--timeout",
        "0.5",
    )
    assert result.returncode != 0 and "is 'nyutai controller'" in result.stderr


def test_controller_refuses_an_unmigrated_database(site_file: Path) -> None:
    result = nyutai("controller", "--config", str(site_file), timeout=30)
    assert result.returncode != 0 and "nyutai db upgrade" in result.stderr


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[readers.x]\nurl = 'ftp:nope'\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(bad)])
    assert result.exit_code != 0
    assert "readers.x.url" in result.output and str(bad) in result.output


def test_an_unknown_time_zone_stops_every_command(site_file: Path) -> None:
    text = site_file.read_text(encoding="utf-8")
    site_file.write_text(text.replace('"Asia/Tokyo"', '"Asia/Edo"'), encoding="utf-8")
    result = nyutai("db", "upgrade", "--config", str(site_file))
    assert result.returncode != 0
    assert "site.timezone" in result.stderr and "'Asia/Edo' is not one" in result.stderr
    assert not (site_file.parent / "nyutai.db").exists()  # stopped before touching anything


def test_tap_names_unknown_readers(site_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["tap", "--config", str(site_file), "--reader", "zz", "--card", "01020304"]
    )
    assert result.exit_code != 0 and "no reader 'zz'" in result.output
