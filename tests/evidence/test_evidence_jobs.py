"""Scheduled duties, run as the scheduler runs them (by the site file's path), and the scheduler."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from controller import jobs
from controller.scheduler import JOB_TABLE, JOBS, start_scheduler
from db.checkpoints import generate_key
from db.engine import make_engine, make_session_factory
from db.incidents import IncidentError, close_incident
from db.migrate import upgrade
from db.models import (
    Alarm,
    Area,
    AuditLog,
    Authorization,
    Checkpoint,
    Credential,
    Event,
    Incident,
    Operator,
    Person,
    Presence,
    Training,
    Visit,
)
from db.settings import END_OF_DAY, set_setting
from domain.config import SiteConfig, load_config
from tests.evidence.helpers import add_events

TOKYO = ZoneInfo("Asia/Tokyo")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SITE = """
[site]
name = "テスト事業所"
[database]
url = "sqlite:///nyutai.db"
[evidence]
backups_keep = 2
"""


def _site(tmp_path: Path, timezone: str) -> SiteConfig:
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace("[site]\n", f'[site]\ntimezone = "{timezone}"\n'), "utf-8")
    c = load_config(path)
    upgrade(c.database_url)
    return c


@pytest.fixture
def cfg(tmp_path: Path) -> SiteConfig:
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    c = load_config(path)
    upgrade(c.database_url)
    return c


@pytest.fixture
def factory(cfg: SiteConfig):  # type: ignore[no-untyped-def]
    eng = make_engine(cfg.database_url)
    yield make_session_factory(eng)
    eng.dispose()


def _area(s: Session) -> Area:
    a = Area(code="server-room", name="サーバ室")
    s.add(a)
    s.flush()
    return a


def test_visitor_badges_expire(factory: sessionmaker[Session], cfg: SiteConfig) -> None:
    now = datetime.now(UTC)
    with factory.begin() as s:
        area = _area(s)
        v = Person(name="来訪者", kind="visitor")
        s.add(v)
        s.flush()
        badges = [
            Credential(technology="felica", card_id=f"0{i}", temporary=True) for i in range(2)
        ]
        s.add_all(badges)
        s.flush()
        for badge, end in zip(
            badges, [now - timedelta(minutes=1), now + timedelta(hours=1)], strict=True
        ):
            s.add(
                Visit(
                    visitor_id=v.id,
                    area_id=area.id,
                    purpose="点検",
                    expected_from=now - timedelta(hours=2),
                    expected_until=end,
                    badge_credential_id=badge.id,
                )
            )
        # the second badge was used before, on a visit that has ended: it stays active
        s.add(
            Visit(
                visitor_id=v.id,
                area_id=area.id,
                purpose="前回",
                expected_from=now - timedelta(days=2),
                expected_until=now - timedelta(days=1),
                badge_credential_id=badges[1].id,
            )
        )
    assert jobs.expire_visitor_badges(str(cfg.path)) == 1
    with factory() as s:
        assert s.scalars(select(Credential.state).order_by(Credential.id)).all() == [
            "inactive",
            "active",
        ]
        assert s.scalar(select(AuditLog.action)) == "badge.expired"
    assert jobs.expire_visitor_badges(str(cfg.path)) == 0


def test_still_inside_alarms_once_after_end_of_day(factory: sessionmaker[Session]) -> None:
    day = datetime(2026, 5, 12, 10, 0, tzinfo=UTC)  # 19:00 JST
    with factory.begin() as s:
        set_setting(s, END_OF_DAY, "19:30")
        area = _area(s)
        staff, visitor = Person(name="職員"), Person(name="来訪者", kind="visitor")
        s.add_all([staff, visitor])
        s.flush()
        for p in (staff, visitor):
            s.add(Presence(person_id=p.id, area_id=area.id, entered_at=day))
    with factory.begin() as s:
        assert jobs.raise_still_inside(s, day, TOKYO) == []  # before 19:30 JST
        late = day + timedelta(minutes=45)
        kinds = sorted(a.kind for a in jobs.raise_still_inside(s, late, TOKYO))
        assert kinds == ["person_still_inside", "visitor_still_inside"]
        assert jobs.raise_still_inside(s, late + timedelta(minutes=5), TOKYO) == []
        assert len(jobs.raise_still_inside(s, late + timedelta(days=1), TOKYO)) == 2


def test_end_of_day_is_the_site_zone_wall_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A London site's 19:30 end of day, run as the scheduler runs it (by the file's path)."""
    cfg = _site(tmp_path, "Europe/London")
    eng = make_engine(cfg.database_url)
    factory = make_session_factory(eng)
    day = datetime(2026, 5, 12, 18, 0, tzinfo=UTC)  # 19:00 BST; 03:00 JST on the 13th
    with factory.begin() as s:
        set_setting(s, END_OF_DAY, "19:30")
        area = _area(s)
        staff = Person(name="職員")
        s.add(staff)
        s.flush()
        s.add(Presence(person_id=staff.id, area_id=area.id, entered_at=day))
    late = day + timedelta(minutes=45)  # 19:45 BST, 03:45 JST
    with factory.begin() as s:
        assert jobs.raise_still_inside(s, day, LONDON) == []
        assert jobs.raise_still_inside(s, late, TOKYO) == []  # Tokyo's 19:30 is hours away
    monkeypatch.setattr(jobs, "utcnow", lambda: late)
    assert jobs.end_of_day_check(str(cfg.path)) == 1  # the job reads the zone from the file
    with factory.begin() as s:
        assert jobs.raise_still_inside(s, late, LONDON) == []  # once a day
    eng.dispose()


def test_nightly_verify_opens_one_incident(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    generate_key(cfg.data_path(cfg.evidence.key_file))
    add_events(factory, 5)
    assert jobs.nightly_verify(str(cfg.path)) is True
    with factory.begin() as s:
        s.execute(text("UPDATE events SET raw_card_id='X' WHERE seq=3"))
    assert jobs.nightly_verify(str(cfg.path)) is False
    assert jobs.nightly_verify(str(cfg.path)) is False  # still broken: no second incident
    with factory() as s:
        inc = s.scalars(select(Incident)).one()
        assert inc.kind == "integrity_failure" and "seq 3" in inc.summary
        assert s.scalar(select(Alarm.kind)) == "integrity_failure"
        mgr = Operator(username="m", display_name="M", role="manager", password_hash="x")
        guard = Operator(username="g", display_name="G", role="guard", password_hash="x")
        s.add_all([mgr, guard])
        s.flush()
        with pytest.raises(IncidentError):
            close_incident(s, inc.id, guard, "原因", "対策")
        with pytest.raises(IncidentError):
            close_incident(s, inc.id, mgr, "原因", " ")
        close_incident(s, inc.id, mgr, "手作業での修正", "DB への直接アクセスを禁止")
        s.commit()
        assert inc.state == "closed"
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "incident.close"))


def test_nightly_verify_checks_since_last_checkpoint_and_all_weekly(  # type: ignore[no-untyped-def]
    factory, cfg: SiteConfig, monkeypatch, caplog
) -> None:
    generate_key(cfg.data_path(cfg.evidence.key_file))
    add_events(factory, 5)
    assert jobs.daily_checkpoint(str(cfg.path)) == 1  # signs seq 5
    add_events(factory, 3, start=datetime(2026, 3, 2, tzinfo=UTC))
    with factory.begin() as s:  # an old row, before the checkpoint
        s.execute(text("UPDATE events SET raw_card_id='X' WHERE seq=2"))
    now = datetime.now(UTC) + timedelta(minutes=1)
    monday = now + timedelta(days=(0 - now.astimezone(cfg.zone).weekday()) % 7)
    sunday = monday + timedelta(days=6)
    monkeypatch.setattr(jobs, "utcnow", lambda: monday)
    caplog.set_level("INFO", logger=jobs.log.name)
    assert jobs.nightly_verify(str(cfg.path)) is True  # only seq 6..8 were read
    assert "verify events (since the last checkpoint): 3 rows, ok=True" in caplog.text
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0
    monkeypatch.setattr(jobs, "utcnow", lambda: sunday)
    assert jobs.nightly_verify(str(cfg.path)) is False  # the weekly full check finds seq 2
    with factory.begin() as s:
        assert "seq 2" in s.scalars(select(Incident)).one().summary
        s.execute(text("UPDATE events SET raw_card_id='Y' WHERE seq=7"))
    monkeypatch.setattr(jobs, "utcnow", lambda: monday)
    caplog.clear()
    assert jobs.nightly_verify(str(cfg.path)) is False  # a new row altered: seen on a weekday
    assert "seq 7" in caplog.text


def test_daily_checkpoint_job(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    add_events(factory, 3)
    assert jobs.daily_checkpoint(str(cfg.path)) == 0  # no key yet: logged, nothing signed
    generate_key(cfg.data_path(cfg.evidence.key_file))
    assert jobs.daily_checkpoint(str(cfg.path)) == 1
    assert jobs.daily_checkpoint(str(cfg.path)) == 0  # once a day


def test_monthly_report_job(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    add_events(factory, 3)
    with factory.begin() as s:
        _area(s)
        written = jobs.write_monthly_report(s, cfg, "2026-03")
    assert sorted(p.suffix for p in written) == [".csv", ".pdf"]
    with factory.begin() as s:
        assert jobs.write_monthly_report(s, cfg, "2026-03") == []
    assert jobs.previous_month(datetime(2026, 4, 30, 15, 30, tzinfo=UTC), TOKYO) == "2026-04"
    # 1 May 03:30 UTC is still 30 April in New York
    assert jobs.previous_month(datetime(2026, 5, 1, 3, 30, tzinfo=UTC), NEW_YORK) == "2026-03"
    assert jobs.previous_month(datetime(2026, 5, 1, 3, 30, tzinfo=UTC), TOKYO) == "2026-04"


def test_training_reminders(factory) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    with factory.begin() as s:
        area = _area(s)
        soon, fine = (
            Person(name="期限間近", designated=True),
            Person(name="受講済", designated=True),
        )
        s.add_all([soon, fine])
        s.flush()
        s.add_all(
            [
                Training(person_id=soon.id, course="年次研修", completed_on=date(2025, 6, 20)),
                Training(person_id=fine.id, course="年次研修", completed_on=date(2026, 5, 1)),
                Authorization(person_id=soon.id, area_id=area.id, state="approved"),
                Authorization(person_id=fine.id, area_id=area.id, state="approved"),
            ]
        )
    with factory.begin() as s:
        assert jobs.remind_trainings(s, now, TOKYO) == 1
        assert jobs.remind_trainings(s, now + timedelta(hours=1), TOKYO) == 0  # once a day
        row = s.scalars(select(AuditLog).where(AuditLog.action == "reminder.training")).one()
        assert [p["detail"] for p in row.after["people"]] == ["training until 2026-06-20"]


def test_backup_is_consistent_and_rotated(factory, cfg: SiteConfig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    add_events(factory, 7)
    out = cfg.data_path("backups")
    t = datetime(2026, 5, 1, tzinfo=UTC)
    paths = [
        jobs.backup_sqlite(cfg.database_url, out, 2, t + timedelta(seconds=i), TOKYO)
        for i in range(3)
    ]
    assert sorted(out.glob("*.db")) == paths[1:]
    assert paths[0] is not None and paths[0].name == "nyutai-20260501-090000.db"  # JST stamp
    ny = jobs.backup_sqlite(cfg.database_url, tmp_path / "ny", 2, t, NEW_YORK)
    assert ny is not None and ny.name == "nyutai-20260430-200000.db"  # EDT stamp
    with sqlite3.connect(paths[-1]) as c:
        assert c.execute("SELECT count(*) FROM events").fetchone() == (7,)
    assert jobs.backup_database(str(cfg.path)) is not None


def _next_runs(factory: sessionmaker[Session]) -> dict[str, float]:
    with factory() as s:
        rows = s.execute(text(f"SELECT id, next_run_time FROM {JOB_TABLE}")).all()
    return {r[0]: r[1] for r in rows}


def test_scheduler_survives_restart_without_double_runs(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    sched = start_scheduler(cfg, factory)
    try:
        assert {j.id for j in sched.get_jobs()} == {spec.id for spec in JOBS}
    finally:
        sched.shutdown()
    before = _next_runs(factory)
    assert len(before) == len(JOBS)
    time.sleep(0.05)
    sched = start_scheduler(cfg, factory)
    sched.shutdown()
    assert _next_runs(factory) == before  # kept, not recomputed: nothing fires twice


def test_scheduler_runs_a_due_job(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    generate_key(cfg.data_path(cfg.evidence.key_file))
    add_events(factory, 2)
    sched = start_scheduler(cfg, factory)
    try:
        sched.modify_job("nyutai.daily_checkpoint", next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 10
        count = 0
        while time.monotonic() < deadline and count == 0:
            time.sleep(0.1)
            with factory() as s:
                count = s.scalar(select(func.count()).select_from(Checkpoint)) or 0
        assert count == 1
    finally:
        sched.shutdown()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 2


def test_jobs_run_on_the_site_zone_clock(tmp_path: Path) -> None:
    """Cron duties fire at their local hour in the site's zone; a site that changes its zone
    gets its stored jobs re-timed on the next start."""
    cfg = _site(tmp_path, "America/New_York")
    eng = make_engine(cfg.database_url)
    factory = make_session_factory(eng)
    sched = start_scheduler(cfg, factory)
    try:
        job = sched.get_job("nyutai.daily_checkpoint")
        assert str(job.trigger.timezone) == "America/New_York"
        local = job.next_run_time.astimezone(NEW_YORK)
        assert (local.hour, local.minute) == (0, 5)
    finally:
        sched.shutdown()
    moved = _site(tmp_path, "Asia/Tokyo")
    sched = start_scheduler(moved, factory)
    try:
        job = sched.get_job("nyutai.daily_checkpoint")
        assert str(job.trigger.timezone) == "Asia/Tokyo"
        local = job.next_run_time.astimezone(TOKYO)
        assert (local.hour, local.minute) == (0, 5)
    finally:
        sched.shutdown()
        eng.dispose()


def test_job_table_is_ignored_by_schema_comparison(factory, cfg: SiteConfig) -> None:  # type: ignore[no-untyped-def]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from db.migrate import include_object
    from db.models import Base

    start_scheduler(cfg, factory).shutdown()
    with factory.kw["bind"].connect() as conn:
        plain = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(plain, Base.metadata) != []  # the job table is there...
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(ctx, Base.metadata) == []  # ...and ignored
