"""A synchronous standby that stops must not hold the doors.

With ``synchronous_standby_names`` set (docs/failover.md recommends it, so a failover loses
no committed row), a primary whose standby is down neither commits nor fails: every commit
waits for the standby. The recorder's patience (``COMMIT_PATIENCE_SECONDS``) turns that wait
into an outage: the works go to the journal, the strike is released, and when the standby
is back the hung commit lands and the journal's replay skips what it holds: every row once,
in order, and the chain verifies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from controller.daemon import Controller
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Alarm, Event
from db.verify import verify_all
from domain.config import load_config
from hardware.sim import SimBackend
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, seed_people
from tests import pgpair

REASON = pgpair.why_not()
if REASON:
    if os.environ.get("CI"):
        pytest.fail(f"synchronous-standby test cannot run in CI: {REASON}")
    pytest.skip(REASON, allow_module_level=True)

pytestmark = pytest.mark.postgres


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_stopped_synchronous_standby_does_not_hold_the_doors(tmp_path: Path) -> None:
    with pgpair.PgPair(synchronous=True) as pair:
        url = pair.url()
        upgrade(url)
        cfg = load_config(DEMO_SITE, data_dir=tmp_path)
        cfg = replace(cfg, database=replace(cfg.database, url=url))
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as s:
            seed_people(s, cfg)
        backend = SimBackend()
        ctl = Controller(cfg, session_factory=factory, backend=backend)
        ctl.recorder.commit_patience = 1.0
        ctl.recorder.alarm_after = 0.0
        ctl.start()
        staff = DEMO_CARDS["yamada"][1]
        try:
            ctl.sync()
            assert ctl.recorder.wait_idle(30)
            pair.stop_standby()
            presented = time.monotonic()
            ctl.readers["sr-in"].present(staff)  # type: ignore[attr-defined]
            # released after the patience, from the journal, not after the standby's return
            wait_for(lambda: backend.outputs["sr-strike"].is_active, 15)
            assert time.monotonic() - presented < 10
            assert ctl.recorder.offline
            kept = [r for r in ctl.unsaved.pending() if r["kind"] == "presentation"]
            assert [r["reason"] for r in kept] == ["granted"]
            with session_scope(factory) as s:  # the hung commit is not visible to anyone
                assert not s.scalars(select(Event).where(Event.raw_card_id == staff)).all()

            pair.start_standby()
            wait_for(lambda: not ctl.recorder.offline and not ctl.unsaved, 60)
            assert ctl.recorder.wait_idle(30)
            with session_scope(factory) as s:
                rows = s.scalars(select(Event).order_by(Event.seq)).all()
                granted = [e for e in rows if e.raw_card_id == staff]
                alarm = s.scalar(select(Alarm).where(Alarm.kind == "database_unavailable"))
                report = verify_all(s, None)
            assert len(granted) == 1 and granted[0].reason == "granted"  # once, not twice
            assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
            assert alarm is not None and alarm.restored_at is not None
            assert report.ok, report
        finally:
            ctl.stop()
            engine.dispose()
