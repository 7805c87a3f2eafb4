"""Reports that agree with themselves: one definition of a crossing, the host and the end of
each visit window, the end-of-day alarm and the report's "still inside" table, bounded lists
whose totals still cover everyone, the PDF's approval box and page numbers, quiet fontTools."""

from __future__ import annotations

import csv
import io
import logging
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller import jobs
from db.engine import make_engine, make_session_factory
from db.eventlog import append_event
from db.migrate import upgrade
from db.models import Alarm, Area, Event, Person, Presence, Visit
from db.reports.monthly import build_monthly_report
from db.reports.monthly_csv import monthly_csv
from db.reports.monthly_pdf import monthly_pdf, write_monthly_pdf
from db.review import _entries
from db.settings import END_OF_DAY, set_setting

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Each rule on SQLite and on PostgreSQL (skipped without NYUTAI_TEST_PG_URL)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("session_factory")
        return
    url = request.getfixturevalue("pg_url")
    upgrade(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


MONTH = "2026-05"
AT = datetime(2026, 5, 12, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
LATER = datetime(2026, 7, 1, tzinfo=UTC)


def _event(s: Session, minutes: float, **kw: object) -> Event:
    fields: dict[str, object] = {
        "occurred_at": AT + timedelta(minutes=minutes),
        "kind": "presentation",
        **kw,
    }
    return append_event(s, Event(**fields))


def _unused(s: Session, minutes: float, grant: Event) -> None:
    """What the controller writes when the door of a grant was never opened."""
    _event(
        s,
        minutes,
        area_id=grant.area_id,
        person_id=grant.person_id,
        direction=grant.direction,
        decision="info",
        reason="not_used",
        detail={"granted_event_id": grant.id},
    )


def test_one_definition_of_an_entry_in_every_table(
    factory: sessionmaker[Session],
) -> None:
    """A visitor taps twice; the door opens once. The visitors table, 入退室回数 and the
    access review's "last entry" all see one entry, at the time of the used grant."""
    with factory() as s:
        area = Area(code="server-room", name="サーバ室")
        host = Person(name="受入 花子")
        escort = Person(name="立会 次郎")
        visitor = Person(name="来訪 一郎", kind="visitor", organization="保守会社")
        s.add_all([area, host, escort, visitor])
        s.flush()
        visit = Visit(
            visitor_id=visitor.id,
            area_id=area.id,
            purpose="保守",
            host_id=host.id,
            escort_id=escort.id,
            expected_from=AT - timedelta(hours=1),
            expected_until=AT + timedelta(days=1, hours=6),  # ends the next day
            signed_in_at=AT - timedelta(minutes=5),
        )
        s.add(visit)
        s.flush()
        who = {"area_id": area.id, "person_id": visitor.id, "visitor": True, "visit_id": visit.id}
        used = _event(s, 0, direction="in", decision="granted", reason="granted", **who)
        _event(s, 30, direction="out", decision="granted", reason="exit", **who)
        unused = _event(s, 40, direction="in", decision="granted", reason="granted", **who)
        _unused(s, 40.2, unused)
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER)
        last = _entries(s, [visitor.id], None).get((visitor.id, area.id))  # the review's
    (sec,) = report.areas
    (line,) = sec.people
    (v,) = sec.visits
    assert (line.entries, line.exits) == (1, 1)
    assert v.entries == line.entries == sec.entries == 1
    assert last == used.occurred_at  # not the later grant whose door never opened
    assert sec.still_inside == []

    rows = [r for r in csv.reader(io.StringIO(monthly_csv(report))) if r]
    (visit_row,) = [r for r in rows if r[:2] == ["visitors", "server-room"] and len(r) > 3]
    assert visit_row[2:] == [
        "来訪 一郎",
        "保守会社",
        "保守",
        "受入 花子",  # the host, in its own column
        "立会 次郎",
        "",
        "2026-05-12 09:00 – 2026-05-13 16:00",  # the window's end, with its date
        "2026-05-12 09:55 – 未退出 / not signed out",
        "1",
    ]


def test_authorizations_page_last_entry_ignores_unused_grants(
    factory: sessionmaker[Session],
) -> None:
    """The same rule through the query the authorizations page runs (its condition)."""
    from sqlalchemy import func

    from db.crossings import entry, event_area
    from db.models import Door

    with factory() as s:
        area = Area(code="a", name="A")
        p = Person(name="P")
        s.add_all([area, p])
        s.flush()
        door = Door(code="d", name="扉", area_id=area.id)
        s.add(door)
        s.flush()
        used = _event(s, 0, door_id=door.id, person_id=p.id, direction="in", decision="granted",
                      reason="granted")  # fmt: skip
        unused = _event(s, 5, door_id=door.id, person_id=p.id, direction="in", decision="granted",
                      reason="granted")  # fmt: skip
        _unused(s, 5.2, unused)
        got = s.execute(
            select(event_area(), func.max(Event.occurred_at))
            .outerjoin(Door, Event.door_id == Door.id)
            .where(Event.person_id == p.id, *entry())
            .group_by(event_area())
        ).all()
    assert [(aid, t) for aid, t in got] == [(area.id, used.occurred_at)]


def test_end_of_day_alarm_and_still_inside_table_agree(
    factory: sessionmaker[Session],
) -> None:
    """Rows as the controller writes them (grant, then presence when the door opens a few
    seconds later); the end-of-day job runs a quarter of an hour late, after someone else
    came in. Its alarms name exactly the report's "still inside" lines for that day, with
    the same "since"."""
    eod_local = datetime(2026, 5, 12, 19, 30, tzinfo=TOKYO)
    with factory() as s:
        set_setting(s, END_OF_DAY, "19:30")
        area = Area(code="server-room", name="サーバ室")
        stays, leaves, late = Person(name="残業"), Person(name="帰宅"), Person(name="夜勤")
        s.add_all([area, stays, leaves, late])
        s.flush()

        def enter(p: Person, when: datetime) -> Event:
            ev = append_event(
                s,
                Event(
                    occurred_at=when,
                    kind="presentation",
                    area_id=area.id,
                    person_id=p.id,
                    direction="in",
                    decision="granted",
                    reason="granted",
                ),
            )
            s.add(
                Presence(
                    person_id=p.id,
                    area_id=area.id,
                    entered_at=when + timedelta(seconds=4),  # the door opened
                    event_id=ev.id,
                )
            )
            return ev

        enter(stays, eod_local - timedelta(hours=2))
        enter(leaves, eod_local - timedelta(hours=1))
        append_event(
            s,
            Event(
                occurred_at=eod_local - timedelta(minutes=10),
                kind="presentation",
                area_id=area.id,
                person_id=leaves.id,
                direction="out",
                decision="granted",
                reason="exit",
            ),
        )
        s.execute(Presence.__table__.delete().where(Presence.person_id == leaves.id))
        enter(late, eod_local + timedelta(minutes=5))  # after the day end
        s.flush()
        alarms = jobs.raise_still_inside(s, eod_local + timedelta(minutes=15), TOKYO)
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER)
        alarm_rows = s.scalars(select(Alarm)).all()
    assert len(alarms) == len(alarm_rows) == 1
    (sec,) = report.areas
    listed = {(x.person_id, x.since) for x in sec.still_inside if x.day == eod_local.date()}
    alarmed = {(a.person_id, datetime.fromisoformat(a.detail["entered_at"])) for a in alarm_rows}
    assert listed == alarmed == {(stays.id, eod_local - timedelta(hours=2))}


def test_bounded_lists_keep_complete_totals(factory: sessionmaker[Session]) -> None:
    """With room for two staff and two "still inside" lines, the most frequent staff are
    listed, every visitor is, and the totals, counts and head counts cover everyone."""
    with factory() as s:
        area = Area(code="a", name="A")
        staff = [Person(name=f"職員{i}") for i in range(5)]
        visitor = Person(name="来訪者", kind="visitor")
        s.add_all([area, *staff, visitor])
        s.flush()
        for i, p in enumerate(staff):
            for k in range(i + 1):  # staff i enters i + 1 times and stays in
                _event(s, i * 10 + k, area_id=area.id, person_id=p.id, direction="in",
                       decision="granted", reason="granted")  # fmt: skip
        _event(s, 99, area_id=area.id, person_id=visitor.id, visitor=True, direction="in",
               decision="granted", reason="granted")  # fmt: skip
        s.commit()
        full = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER, staff_top=None,
                                    inside_max=None)  # fmt: skip
        small = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER, staff_top=2, inside_max=2)
    (f,), (b,) = full.areas, small.areas
    assert len(f.people) == 6 and f.people_omitted == 0
    assert sorted(p.name for p in b.people) == ["来訪者", "職員3", "職員4"]
    assert (b.entries, b.staff_count, b.visitor_count, b.people_omitted) == (16, 5, 1, 3)
    assert b.entries == f.entries == sum(p.entries for p in f.people)
    assert len(b.still_inside) == 2 and b.inside_total == f.inside_total == len(f.still_inside)
    assert b.inside_per_day == f.inside_per_day and dict(b.inside_per_day)[AT.date()] == 6
    assert b.still_inside == f.still_inside[:2]
    rows = [r for r in csv.reader(io.StringIO(monthly_csv(small))) if r]
    assert ["people_totals", "a", "5", "1", "16", "0", "3", "3"] in rows
    assert ["inside_per_day", "a", "2026-05-31", "6"] in rows


def test_pdf_has_an_approval_box_and_page_numbers(factory: sessionmaker[Session], tmp_path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    with factory() as s:
        s.add(Area(code="a", name="A"))
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER)
    path = tmp_path / "r.pdf"
    write_monthly_pdf(report, path)
    pages = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 2
    first = pages[0]
    for label in ("押印欄", "作成者", "確認者", "承認者"):
        assert label in first
    for n, page in enumerate(pages, start=1):
        assert f"{n}/{len(pages)}" in page


def test_making_a_pdf_does_not_flood_the_log(
    factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    with factory() as s:
        s.add(Area(code="a", name="A"))
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER)
    caplog.set_level(logging.DEBUG)  # as verbose as a service could be configured
    logging.getLogger("fontTools").setLevel(logging.NOTSET)  # what a logging config may do
    assert monthly_pdf(report).startswith(b"%PDF")
    noisy = [r for r in caplog.records if r.name.startswith("fontTools")]
    assert noisy == []


def _cross(s: Session, area: Area, p: Person, when: datetime, direction: str) -> Event:
    return append_event(
        s,
        Event(
            occurred_at=when,
            kind="presentation",
            area_id=area.id,
            person_id=p.id,
            direction=direction,
            decision="granted",
            reason="granted" if direction == "in" else "exit",
        ),
    )


def test_month_start_comes_from_the_previous_reports_snapshot(
    factory: sessionmaker[Session],
) -> None:
    """April's report stores who was inside when May began; May's report starts from it
    (so it does not re-read the history, and a purge of April loses nothing) and agrees
    with a computation from the log; a late crossing dated April makes it stale."""
    from sqlalchemy import delete

    from db.models import OccupancySnapshot
    from db.reports.monthly import month_bounds

    may_start, _ = month_bounds(MONTH, TOKYO)
    with factory() as s:
        area = Area(code="a", name="A")
        night, day, late = Person(name="夜勤"), Person(name="日勤"), Person(name="遅延")
        s.add_all([area, night, day, late])
        s.flush()
        _cross(s, area, night, may_start - timedelta(days=3), "in")  # stays in over May 1
        _cross(s, area, day, may_start - timedelta(days=2), "in")
        _cross(s, area, day, may_start - timedelta(days=2, hours=-8), "out")
        _cross(s, area, day, may_start + timedelta(days=1, hours=1), "in")
        s.commit()
        build_monthly_report(s, "2026-04", zone=TOKYO, now=LATER)
        s.commit()
        snap = s.scalar(select(OccupancySnapshot).where(OccupancySnapshot.at == may_start))
        assert snap is not None and [pid for pid, _ in snap.inside] == [night.id]
        from_snapshot = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER).areas[0]
        s.execute(delete(OccupancySnapshot))
        from_log = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER).areas[0]
        s.commit()
        assert from_snapshot.still_inside == from_log.still_inside
        assert {x.person_id for x in from_log.still_inside} == {night.id, day.id}
        # April's crossings purged: May still knows the night shift was inside since April
        s.execute(delete(Event).where(Event.occurred_at < may_start))
        s.commit()
        purged = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER).areas[0]
        assert purged.still_inside == from_log.still_inside
        # a crossing dated April but appended now: the snapshot is stale and recomputed
        _cross(s, area, late, may_start - timedelta(hours=1), "in")
        s.commit()
        after = build_monthly_report(s, MONTH, zone=TOKYO, now=LATER).areas[0]
        first_day = {x.person_id for x in after.still_inside if x.day == may_start.date()}
        assert late.id in first_day
