"""Scheduled duties run once per site: two controllers' schedulers on one database, one lease.

Two DutyRunner instances (what two controller processes start) share the job table. A duty
due every second runs in the lease holder only; when the holder stops (cleanly, or falls
silent past the stale time) the other takes the lease and runs the duty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from controller import jobs
from controller.scheduler import DutyRunner, JobSpec
from db.controllers import DUTY_LEASE_KEY
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import SiteSetting
from domain.config import SiteConfig, load_config

SPECS = (
    JobSpec(
        "nyutai.expire_visitor_badges",
        jobs.expire_visitor_badges,
        lambda tz: IntervalTrigger(seconds=1, timezone=tz),
        "visitor badges expire (every second here)",
    ),
)
STALE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SiteConfig, sessionmaker[Session]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nyutai.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nname = "テスト"\n[database]\nurl = "{url}"\n', encoding="utf-8")
    cfg = load_config(path)
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    try:
        yield cfg, make_session_factory(engine)
    finally:
        engine.dispose()


def _runner(
    cfg: SiteConfig, sessions: sessionmaker[Session], me: str, clock: Clock, runs: list[str]
) -> DutyRunner:
    runner = DutyRunner(cfg, sessions, me, stale_seconds=STALE, clock=clock, specs=SPECS)
    scheduler = runner.start(thread=False)  # the test beats by hand

    def executed(event: JobExecutionEvent) -> None:
        runs.append(me)

    scheduler.add_listener(executed, EVENT_JOB_EXECUTED)
    return runner


def _wait_runs(runs: list[str], who: str, n: int = 2, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while runs.count(who) < n:
        assert time.monotonic() < deadline, f"{who} ran the duty {runs.count(who)} times: {runs}"
        time.sleep(0.1)


def _holder(sessions: sessionmaker[Session]) -> str | None:
    with sessions() as s:
        row = s.get(SiteSetting, DUTY_LEASE_KEY)
        return None if row is None else row.value.get("holder")


@dataclass
class Pair:
    a: DutyRunner
    b: DutyRunner
    clock: Clock
    runs: list[str]
    sessions: sessionmaker[Session]


@pytest.fixture
def pair(site: tuple[SiteConfig, sessionmaker[Session]]) -> Iterator[Pair]:
    """Two controllers' duty runners on one database, bldg-a started first; both stopped
    after the test."""
    cfg, sessions = site
    clock, runs = Clock(), []
    a = _runner(cfg, sessions, "bldg-a", clock, runs)
    b = _runner(cfg, sessions, "bldg-b", clock, runs)
    try:
        yield Pair(a, b, clock, runs, sessions)
    finally:
        a.stop()
        b.stop()


def test_a_duty_runs_in_one_controller_and_moves_when_its_holder_stops(pair: Pair) -> None:
    a, b, runs, sessions = pair.a, pair.b, pair.runs, pair.sessions
    assert (a.holding, b.holding) == (True, False)
    assert _holder(sessions) == "bldg-a"
    _wait_runs(runs, "bldg-a", 3)
    assert b.tick() is False  # a renewed lease stays with its holder
    assert "bldg-b" not in runs  # one runner: the duty never ran in b

    # a stops cleanly: the lease is given up and b takes it at its next beat
    a.stop()
    assert _holder(sessions) is None
    assert b.tick() is True
    _wait_runs(runs, "bldg-b", 1)  # by now a job of a's already under way has ended
    done_by_a = runs.count("bldg-a")
    _wait_runs(runs, "bldg-b", 3)
    assert runs.count("bldg-a") == done_by_a


def test_a_silent_holder_loses_the_lease_after_the_stale_time(pair: Pair) -> None:
    a, b, clock, runs, sessions = pair.a, pair.b, pair.clock, pair.runs, pair.sessions
    assert a.holding and not b.holding
    # a falls silent (kill -9, a hung host): no renewal. Before the stale time: still a's.
    clock.now += timedelta(seconds=STALE - 1)
    assert b.tick() is False
    clock.now += timedelta(seconds=2)
    assert b.tick() is True
    assert _holder(sessions) == "bldg-b"
    _wait_runs(runs, "bldg-b", 2)
    # a comes back: its renewal fails, its scheduler pauses; b keeps the duties
    assert a.tick() is False
    # a job of a's that the scheduler had already fired may still finish: count after it
    _wait_runs(runs, "bldg-b", runs.count("bldg-b") + 1)
    paused_at = runs.count("bldg-a")
    _wait_runs(runs, "bldg-b", runs.count("bldg-b") + 2)
    assert runs.count("bldg-a") == paused_at
