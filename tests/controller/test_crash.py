"""kill -9 of the real controller process during a burst of taps.

Taps arrive as web commands (the simulator's path). The controller process is killed with
SIGKILL mid-burst, then started again. Afterwards: every strike the process logged as
released has its committed row, every tap command produced exactly one decision row (none
lost, none twice, though some ran across the crash), and ``nyutai verify`` passes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from db.commands import CommandKind, enqueue
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Command, Event
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD, seed_people

TAPS = 150
RELEASED = re.compile(r"strike released at \S+ for event (\d+)")


def _start(site: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nyutai", "controller", "--config", str(site)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )


def _done(factory: object) -> int:
    with session_scope(factory) as s:  # type: ignore[arg-type]
        return int(
            s.scalar(select(func.count()).where(Command.state != "queued").select_from(Command))
            or 0
        )


def test_kill_9_during_a_burst_of_taps(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(Path(DEMO_SITE).read_text(encoding="utf-8"), encoding="utf-8")
    cfg = load_config(site)
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        seed_people(s, cfg)
        for i in range(TAPS):
            card = DEMO_CARDS["yamada"][1] if i % 3 else UNKNOWN_CARD
            enqueue(s, CommandKind.TAP, {"reader": "sr-in", "card": card})
    log = tmp_path / "controller.log"
    proc = _start(site, log)
    try:
        deadline = time.monotonic() + 60
        while _done(factory) < TAPS // 4:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the controller took no commands"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = _done(factory)
        assert killed_at < TAPS, "killed too late to test anything"
        # every strike released before the kill has its committed row
        released = {int(m) for m in RELEASED.findall(log.read_text(encoding="utf-8"))}
        assert released
        with session_scope(factory) as s:
            have = set(s.scalars(select(Event.id).where(Event.id.in_(released))))
        assert have == released
        proc = _start(site, log)
        deadline = time.monotonic() + 60
        while _done(factory) < TAPS:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the rest of the burst was not taken"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    released = {int(m) for m in RELEASED.findall(log.read_text(encoding="utf-8"))}
    with session_scope(factory) as s:
        decided = s.execute(
            select(Event.id, Event.reason).where(
                Event.kind == "presentation", Event.decision.in_(["granted", "denied"])
            )
        ).all()
        states = set(s.scalars(select(Command.state)))
    engine.dispose()
    assert states == {"done"}
    # one decision per tap: nothing lost, nothing twice
    assert len(decided) == TAPS
    assert sum(1 for _, r in decided if r == "unknown_card") == len(range(0, TAPS, 3))
    assert released <= {i for i, _ in decided}
    verify = subprocess.run(
        [sys.executable, "-m", "nyutai", "verify", "--config", str(site)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
