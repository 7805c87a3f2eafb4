"""Two controller processes on one database (SQLite and PostgreSQL), with the CLI and the
web console beside them.

One site file describes the whole site: controller ``bldg-a`` runs the server room's front
door, ``bldg-b`` its back door and the My Number room. Taps go in as commands (the web's and
the CLI's path). Checked: each command is taken by the controller that owns its reader; an
entry at A's door is seen at B's door (anti-passback) and the exit at B is seen at A; both
events chains verify; a third controller claiming B's door is refused at start-up with a
reason code; kill -9 of A leaves B deciding.

The console is a third process (``nyutai web`` from the same site file, on a loopback port),
and the guard and the manager work it over HTTP as a browser would (login form with its
CSRF token, the manager's TOTP code): an alarm acknowledged there reaches only the controller
of its door, and an area lockdown reaches both controllers of the area.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.commands import CommandKind, enqueue
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Command, ControllerRow, Door, Event, Presence
from db.types import utcnow
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD, seed_people
from tests.processes import Browser, web_console

ROOT = Path(__file__).resolve().parents[2]
YAMADA = DEMO_CARDS["yamada"][1]
FEED_WAIT = 1.5  # the change feed carries a crossing to the other controller within 1 s


def site_text(db_url: str) -> str:
    """The demo site as a whole-site file for two controllers. The server room's front door
    loses its contact so that a granted tap is a crossing at once (no one opens it here)."""
    text = Path(DEMO_SITE).read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///nyutai.db"', f'url = "{db_url}"')
    text = text.replace('gpio_backend = "sim"', 'id = "bldg-a"\ngpio_backend = "sim"')
    text = text.replace('contact = "sr-contact"\n', "")
    text = text.replace('contact = "mnf-contact"\n', "").replace('contact = "mnb-contact"\n', "")
    text = text.replace('area = "mynumber-room"', 'area = "mynumber-room"\ncontroller = "bldg-b"')
    text += """
[doors.server-room-back]
area = "server-room"
name = "サーバ室 裏扉"
controller = "bldg-b"
entry_reader = "srb-in"
exit_reader = "srb-out"

[readers.srb-in]
url = "sim:srb-in"
[readers.srb-out]
url = "sim:srb-out"
"""
    return text


class Sites:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.file = tmp / "site.toml"
        self.file.write_text(site_text(db_url), encoding="utf-8")
        self.cfg = load_config(self.file)
        upgrade(self.cfg.database_url)
        self.engine = make_engine(self.cfg.database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        with session_scope(self.sessions) as s:
            seed_people(s, self.cfg)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log(self, cid: str) -> Path:
        return self.tmp / f"{cid}.log"

    def start(self, cid: str, file: Path | None = None) -> subprocess.Popen[bytes]:
        with self.log(cid).open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nyutai", "controller", "--site", str(file or self.file),
                 "--id", cid],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        self.procs[cid] = proc
        return proc

    def wait_running(self, cid: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            proc = self.procs[cid]
            assert proc.poll() is None, self.log(cid).read_text()
            with session_scope(self.sessions) as s:
                row = s.scalar(select(ControllerRow).where(ControllerRow.code == cid))
                if row is not None and self._answers(s, cid):
                    return
            assert time.monotonic() < deadline, f"{cid} did not start"
            time.sleep(0.1)

    def _answers(self, s: Session, cid: str) -> bool:
        # the status row the door thread publishes once it runs
        from db.models import DeviceStatus

        return (
            s.scalar(
                select(DeviceStatus.id).where(
                    DeviceStatus.kind == "controller", DeviceStatus.key == cid
                )
            )
            is not None
        )

    def tap(self, reader: str, card: str, timeout: float = 20.0) -> tuple[Command, list[Event]]:
        with session_scope(self.sessions) as s:
            cmd_id = enqueue(s, CommandKind.TAP, {"reader": reader, "card": card}).id
        deadline = time.monotonic() + timeout
        while True:
            with session_scope(self.sessions) as s:
                cmd = s.get(Command, cmd_id)
                assert cmd is not None
                if cmd.state in ("done", "failed"):
                    rows = list(
                        s.scalars(
                            select(Event)
                            .where(Event.reader == reader, Event.raw_card_id == card)
                            .order_by(Event.occurred_at.desc())
                            .limit(1)
                        )
                    )
                    s.expunge_all()
                    return cmd, rows
            assert time.monotonic() < deadline, f"tap at {reader} not taken"
            time.sleep(0.02)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sites]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nyutai.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Sites(tmp_path, url)
    try:
        yield s
    finally:
        s.stop_all()


def _result(cmd: Command) -> dict[str, Any]:
    return dict(cmd.result or {})


def test_two_controllers_share_one_database(sites: Sites) -> None:
    sites.start("bldg-a")
    sites.start("bldg-b")
    sites.wait_running("bldg-a")
    sites.wait_running("bldg-b")
    with session_scope(sites.sessions) as s:
        owners = {code: c for code, c in s.execute(select(Door.code, Door.controller))}
    assert owners == {
        "server-room-door": "bldg-a",
        "server-room-back": "bldg-b",
        "mynumber-front": "bldg-b",
        "mynumber-back": "bldg-b",
    }

    # entry at A's door: taken by A only, its row in A's chain
    cmd, rows = sites.tap("sr-in", YAMADA)
    assert cmd.controller == "bldg-a"
    assert _result(cmd)["decision"] == "granted", _result(cmd)
    assert rows[0].controller == "bldg-a" and rows[0].decision == "granted"
    time.sleep(FEED_WAIT)
    # B runs the area's other door: yamada is inside, a second entry there is refused
    cmd, rows = sites.tap("srb-in", YAMADA)
    assert cmd.controller == "bldg-b"
    assert (_result(cmd)["decision"], _result(cmd)["reason"]) == ("denied", "antipassback")
    assert rows[0].controller == "bldg-b"
    # the exit at B, then A sees yamada outside and lets them in again
    cmd, _rows = sites.tap("srb-out", YAMADA)
    assert _result(cmd)["decision"] == "granted", _result(cmd)
    with session_scope(sites.sessions) as s:
        assert s.scalar(select(Presence.id)) is None  # nobody else went in
    time.sleep(FEED_WAIT)
    cmd, rows = sites.tap("sr-in", YAMADA)
    assert _result(cmd)["decision"] == "granted", _result(cmd)
    assert rows[0].controller == "bldg-a"

    # each command went to the controller owning its reader, and only that one took it
    with session_scope(sites.sessions) as s:
        by_reader = {(c.payload["reader"], c.controller) for c in s.scalars(select(Command))}
        writers = {
            (e.reader, e.controller)
            for e in s.scalars(select(Event).where(Event.kind == "presentation"))
        }
    assert by_reader == {("sr-in", "bldg-a"), ("srb-in", "bldg-b"), ("srb-out", "bldg-b")}
    assert writers == by_reader

    # a third controller claiming B's door while B runs: refused, with the reason code
    claim = sites.tmp / "claim.toml"
    claim.write_text(
        sites.file.read_text(encoding="utf-8").replace(
            'controller = "bldg-b"\nentry_reader = "srb-in"',
            'controller = "bldg-c"\nentry_reader = "srb-in"',
        ),
        encoding="utf-8",
    )
    third = sites.start("bldg-c", claim)
    assert third.wait(60) != 0
    assert "door_claimed" in sites.log("bldg-c").read_text(encoding="utf-8")
    with session_scope(sites.sessions) as s:
        assert s.scalar(select(Door.controller).where(Door.code == "server-room-back")) == "bldg-b"

    # kill -9 of A: B goes on deciding
    sites.procs["bldg-a"].send_signal(signal.SIGKILL)
    sites.procs["bldg-a"].wait(10)
    cmd, rows = sites.tap("srb-in", UNKNOWN_CARD)
    assert cmd.controller == "bldg-b"
    assert (_result(cmd)["decision"], _result(cmd)["reason"]) == ("denied", "unknown_card")
    assert rows and rows[0].controller == "bldg-b"
    sites.procs["bldg-b"].send_signal(signal.SIGTERM)
    assert sites.procs["bldg-b"].wait(20) == 0

    # both chains verify, each named
    verify = subprocess.run(
        [sys.executable, "-m", "nyutai", "verify", "--config", str(sites.file)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "events@bldg-a:" in verify.stdout and "events@bldg-b:" in verify.stdout


@pytest.fixture
def console(sites: Sites) -> Iterator[dict[str, Browser]]:
    """The web console as its own ``nyutai web`` process, from the same site file (so on
    the same database), on a loopback port: a guard and a manager enrolled for TOTP, each
    signed in over HTTP with the login form (password, then the manager's code). The
    process is stopped when the test ends, pass or fail."""
    from db.models import Operator
    from tests.web.conftest import PASSWORD, TOTP_SEEDS, enrol_totp
    from web.accounts import hash_password

    with web_console(sites.file, sites.tmp / "web.log") as base:
        # the console made its signing key in the site's data directory on start; the
        # manager's seed is sealed with it, as the enrolment page would have sealed it
        key = sites.cfg.data_path(sites.cfg.web.secret_key_file).read_bytes()
        with session_scope(sites.sessions) as s:
            pw = hash_password(PASSWORD)
            for role in ("guard", "manager"):
                op = Operator(username=role, display_name=role, role=role, password_hash=pw)
                s.add(op)
                s.flush()
                if role in TOTP_SEEDS:
                    enrol_totp(s, op.id, TOTP_SEEDS[role], key)
        consoles = {}
        for role in ("guard", "manager"):
            browser = Browser(base)
            status = browser.sign_in(role, PASSWORD, TOTP_SEEDS.get(role))
            assert (status, browser.location) == (302, "/dashboard"), role
            consoles[role] = browser
        yield consoles


def _wait_done(sites: Sites, where: Any, n: int, timeout: float = 20.0) -> list[Command]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(sites.sessions) as s:
            cmds = list(s.scalars(select(Command).where(where).order_by(Command.id)))
            s.expunge_all()
        if len(cmds) == n and all(c.state in ("done", "failed") for c in cmds):
            return cmds
        assert time.monotonic() < deadline, [(c.controller, c.state) for c in cmds]
        time.sleep(0.05)


def test_console_ack_reaches_its_controller_and_lockdown_reaches_both(
    sites: Sites, console: dict[str, Browser]
) -> None:
    """Two controller processes and a ``nyutai web`` process on one database: an alarm of
    B's door acknowledged in the console is taken by B only; a lockdown of the server room (a
    door on each controller) is carried out by both, and both refuse entry until lifted."""
    from db.models import Alarm, Area

    sites.start("bldg-a")
    sites.start("bldg-b")
    sites.wait_running("bldg-a")
    sites.wait_running("bldg-b")

    # an alarm at B's door (the My Number room's front door), acknowledged in the console
    with session_scope(sites.sessions) as s:
        door = s.scalar(select(Door).where(Door.code == "mynumber-front"))
        assert door is not None and door.controller == "bldg-b"
        alarm = Alarm(kind="door_forced", door_id=door.id, raised_at=utcnow(),
                      controller="bldg-b")  # fmt: skip
        s.add(alarm)
        s.flush()
        alarm_id = alarm.id
    status = console["guard"].submit(
        f"/alarms/{alarm_id}/ack", {"comment": "巡回で確認"}, page="/alarms/"
    )
    assert status == 302
    [cmd] = _wait_done(sites, Command.kind == "ack_alarm", 1)
    assert (cmd.controller, cmd.state) == ("bldg-b", "done"), cmd.result
    with session_scope(sites.sessions) as s:
        row = s.get(Alarm, alarm_id)
        assert row is not None and row.state == "acknowledged" and row.ack_comment == "巡回で確認"

    # a lockdown of the server room: its front door is A's, its back door B's
    with session_scope(sites.sessions) as s:
        room = s.scalar(select(Area.id).where(Area.code == "server-room"))
    manager = console["manager"]
    status = manager.submit(f"/doors/areas/{room}/lockdown", {"reason": "訓練"}, page="/doors/")
    assert status == 302
    cmds = _wait_done(sites, Command.kind == "lockdown", 2)
    assert sorted((c.controller, c.state) for c in cmds) == [("bldg-a", "done"), ("bldg-b", "done")]
    for reader in ("sr-in", "srb-in"):
        cmd, _rows = sites.tap(reader, YAMADA)
        assert (_result(cmd)["decision"], _result(cmd)["reason"]) == ("denied", "lockdown"), reader
    status = manager.submit(f"/doors/areas/{room}/lift", {"reason": "訓練終了"}, page="/doors/")
    assert status == 302
    cmds = _wait_done(sites, Command.kind == "lift_lockdown", 2)
    assert sorted(c.controller for c in cmds) == ["bldg-a", "bldg-b"]
    cmd, _rows = sites.tap("sr-in", YAMADA)
    assert _result(cmd)["decision"] == "granted", _result(cmd)
    # every command went to one of the two, none was left for any controller to take
    with session_scope(sites.sessions) as s:
        owners = set(s.scalars(select(Command.controller)))
    assert owners <= {"bldg-a", "bldg-b"}
