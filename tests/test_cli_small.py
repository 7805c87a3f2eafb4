"""Small CLI rules (issue 13): --version, tap's card checks and expiry, one demo per folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from db.commands import CommandKind, claim, enqueue, expire, expire_overdue
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Command, CommandState, Event, Operator
from db.types import utcnow
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.cli import main
from nyutai.demo import DEMO_CARDS, reset_demo_passwords, seed_demo
from nyutai.runlock import AlreadyRunning, RunLock
from tests.test_cli import ROOT, nyutai
from web.accounts import verify_password


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    site = tmp_path / "site.toml"
    shutil.copyfile(DEMO_SITE, site)
    return site


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"nyutai {version('nyutai')}"


def _commands(site_file: Path) -> list[Command]:
    engine = make_engine(load_config(site_file).database_url)
    with session_scope(make_session_factory(engine)) as s:
        rows = list(s.scalars(select(Command).order_by(Command.id)))
        s.expunge_all()
    engine.dispose()
    return rows


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--card", "04A1B2C3D4E5F6", "--technology", "foo"], "'foo' is not one of"),
        (["--card", "0102"], "fit no card technology"),
        (["--card", "04A1B2C3D4E5F6", "--technology", "felica"], "16 hexadecimal digits"),
        (["--card", "zz12"], "hexadecimal"),
    ],
)
def test_tap_refuses_ids_that_fit_no_technology(
    site_file: Path, args: list[str], said: str
) -> None:
    assert nyutai("db", "upgrade", "--config", str(site_file)).returncode == 0
    result = CliRunner().invoke(
        main, ["tap", "--config", str(site_file), "--reader", "sr-in", *args]
    )
    assert result.exit_code != 0 and said in result.output
    assert _commands(site_file) == []  # refused before anything reached the controller


def test_timed_out_tap_is_not_carried_out_when_the_controller_comes_back(
    site_file: Path,
) -> None:
    assert nyutai("db", "upgrade", "--config", str(site_file)).returncode == 0
    cfg = load_config(site_file)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        seed_demo(s, cfg)
    engine.dispose()
    # no controller: the 7-byte UID is sent as ISO 14443A, times out and is withdrawn
    late = nyutai(
        "tap", "--config", str(site_file), "--reader", "sr-in",
        "--card", "04A1B2C3D4E5F6", "--timeout", "0.5",
    )  # fmt: skip
    assert late.returncode != 0 and "will not be carried out later" in late.stderr
    (cmd,) = _commands(site_file)
    assert cmd.payload["technology"] == "iso14443a" and cmd.payload["card"] == "04A1B2C3D4E5F6"
    assert cmd.state == CommandState.FAILED and cmd.result == {"error": "expired"}
    # the controller comes back: it answers a new tap, and never runs the withdrawn one
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nyutai", "controller", "--config", str(site_file)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        granted = nyutai(
            "tap", "--config", str(site_file), "--reader", "sr-in",
            "--card", DEMO_CARDS["yamada"][1], "--timeout", "30",
        )  # fmt: skip
        assert granted.returncode == 0 and granted.stdout.startswith("granted"), granted.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        late_events = s.scalar(
            select(func.count(Event.id)).where(Event.raw_card_id == "04A1B2C3D4E5F6")
        )
        assert late_events == 0
    engine.dispose()


def test_command_expiry_rules(session_factory) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with session_factory() as s:
        old = enqueue(s, CommandKind.TAP, {"reader": "sr-in", "card": "01020304"},
                      expires_in=5, now=now)  # fmt: skip
        fresh = enqueue(s, CommandKind.TAP, {"reader": "sr-in", "card": "01020305"},
                        expires_in=60, now=now)  # fmt: skip
        forever = enqueue(s, CommandKind.FORGIVE, {"person_id": 1}, now=now)
        s.commit()
        later = now + timedelta(seconds=10)  # past the 5 s, not the 60 s
        assert claim(s, old.id, later) is None  # expired: never runs
        taken = claim(s, fresh.id, later)
        assert taken is not None and taken.state == CommandState.RUNNING
        assert claim(s, fresh.id, later) is None  # taken once only
        assert expire(s, forever.id, later) is True  # the sender gave up first
        assert expire(s, fresh.id, later) is False  # the controller has it already
        s.commit()
        s.expire_all()
        states = {c.id: (c.state, c.result) for c in s.scalars(select(Command))}
    assert states[old.id] == (CommandState.FAILED, {"error": "expired"})
    assert states[fresh.id][0] == CommandState.RUNNING
    assert states[forever.id] == (CommandState.FAILED, {"error": "expired"})
    with session_factory() as s:
        stale = enqueue(s, CommandKind.TAP, {"reader": "sr-in", "card": "01020306"},
                        expires_in=1, now=now)  # fmt: skip
        keep = enqueue(s, CommandKind.TAP, {"reader": "sr-in", "card": "01020307"}, now=now)
        s.commit()
        assert expire_overdue(s, later) == 1
        s.commit()
        s.expire_all()
        assert s.get(Command, stale.id).state == CommandState.FAILED
        assert s.get(Command, keep.id).state == CommandState.QUEUED


def test_run_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "demo.lock"
    with RunLock(path):
        with pytest.raises(AlreadyRunning) as second:
            RunLock(path).acquire()
        assert second.value.pid == str(os.getpid())
    RunLock(path).acquire().release()  # free again once the holder let go


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_demo(data: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nyutai", "demo", "--data-dir", str(data),
         "--port", str(_free_port())],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    seen = ""
    while "Web console" not in seen and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    return proc, seen


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


def test_second_demo_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first, seen = _start_demo(data)
    try:
        assert "Web console" in seen, seen
        second = nyutai("demo", "--data-dir", str(data), "--port", str(_free_port()))
        assert second.returncode != 0
        assert "already running" in second.stderr and str(first.pid) in second.stderr
    finally:
        _stop(first)
    # started again (the first one stopped): the passwords are not shown again, but how to
    # get new ones is
    again, seen = _start_demo(data)
    _stop(again)
    assert "Web console" in seen and "--reset-passwords" in seen, seen
    cfg = load_config(data / "site.toml")
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        fresh = {login.role: login for login in reset_demo_passwords(s, b"k" * 32)}
    with session_scope(make_session_factory(engine)) as s:
        op = s.scalar(select(Operator).where(Operator.username == fresh["guard"].username))
        assert op is not None and verify_password(op.password_hash, fresh["guard"].password)
        assert fresh["manager"].totp_seed and not fresh["guard"].totp_seed
    engine.dispose()
