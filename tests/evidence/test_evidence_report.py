"""The monthly report against a synthetic month whose figures the test computes by itself."""

from __future__ import annotations

import csv
import io
import random
import shutil
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.checkpoints import create_checkpoints, generate_key, load_key
from db.eventlog import append_event
from db.incidents import close_incident, open_incident_for_alarm
from db.models import Alarm, Area, DeletionRecord, Door, Event, Operator, Person, Visit
from db.reports.monthly import ReportError, build_monthly_report, month_bounds
from db.reports.monthly_csv import monthly_csv, write_monthly_csv
from db.reports.monthly_pdf import monthly_pdf, write_monthly_pdf

TOKYO = ZoneInfo("Asia/Tokyo")
MONTH = "2026-05"
MY_NUMBER = "123456789018"  # a 12-digit individual number that must never be printed
PIN = "482913"
REASONS = ["unknown_card", "no_authorization", "pin_wrong", "training_expired", "antipassback"]


def _in_month(t: datetime) -> bool:
    return t.astimezone(TOKYO).strftime("%Y-%m") == MONTH


def seed(factory: sessionmaker[Session], rnd: random.Random, key_path: Path) -> dict:
    """Write a month of rows; return the plain facts the expected figures are computed from."""
    facts: dict = {"events": [], "visits": []}
    with factory() as s:
        areas = [Area(code="server-room", name="サーバ室"), Area(code="mn-room", name="処理室")]
        s.add_all(areas)
        s.flush()
        doors = [
            Door(code=f"d{i}", name=f"扉{i}", area_id=a.id) for i, a in enumerate(areas + areas)
        ]
        s.add_all(doors)
        staff = [
            Person(name=f"従業者{i}", designated=True, notes=f"個人番号 {MY_NUMBER}")
            for i in range(4)
        ]
        visitors = [
            Person(name=f"来訪者{i}", kind="visitor", organization="協力会社") for i in range(2)
        ]
        s.add_all(staff + visitors)
        mgr = Operator(
            username="mgr", display_name="管理 責任者", role="manager", password_hash="x"
        )
        s.add(mgr)
        s.flush()
        for i, v in enumerate(visitors):
            visit = Visit(
                visitor_id=v.id,
                area_id=areas[0].id,
                purpose=f"=保守点検 {i}",  # a formula-looking purpose: must be defused in CSV
                escort_id=staff[0].id,
                declared_devices=[{"kind": "laptop", "serial": f"SN{i}"}],
                expected_from=datetime(2026, 5, 10 + i, 1, 0, tzinfo=UTC),
                expected_until=datetime(2026, 5, 10 + i, 8, 0, tzinfo=UTC),
            )
            s.add(visit)
            s.flush()
            facts["visits"].append((areas[0].id, visit.id, v.id))
        people = [(p.id, p.kind) for p in staff + visitors]
        start = datetime(2026, 4, 25, tzinfo=UTC)
        times = [start + timedelta(minutes=rnd.randrange(60 * 24 * 42)) for _ in range(250)]
        m0, m1 = month_bounds(MONTH, TOKYO)
        times += [m0, m0 - timedelta(microseconds=1), m1, m1 - timedelta(microseconds=1)]
        for t in sorted(times):
            pid, kind = rnd.choice(people)
            door = rnd.choice(doors)
            granted = rnd.random() < 0.75
            via_door = rnd.random() < 0.5  # the area comes from the door, or is set directly
            visit_id = next((v for a, v, p in facts["visits"] if p == pid), None)
            ev = Event(
                occurred_at=t,
                kind="presentation",
                door_id=door.id if via_door else None,
                area_id=None if via_door else door.area_id,
                person_id=pid,
                direction=rnd.choice(["in", "out"]),
                decision="granted" if granted else "denied",
                reason="granted" if granted else rnd.choice(REASONS),
                visitor=kind == "visitor",
                visit_id=visit_id,
                raw_card_id="0102030405060708",
                detail={"my_number": MY_NUMBER, "pin": PIN},
            )
            append_event(s, ev)
            facts["events"].append(
                (t, door.area_id, pid, ev.direction, ev.decision, ev.reason, visit_id)
            )
        # alarms and incidents: two in May in area 0, one in April, one site-wide
        for when, door in [
            (datetime(2026, 5, 3, tzinfo=UTC), doors[0]),
            (datetime(2026, 5, 20, tzinfo=UTC), doors[1]),
            (datetime(2026, 4, 20, tzinfo=UTC), doors[0]),
        ]:
            alarm = Alarm(kind="door_forced", door_id=door.id, raised_at=when)
            s.add(alarm)
            s.flush()
            s.refresh(alarm)
            open_incident_for_alarm(s, alarm, [1, 2], [])
        s.add(Alarm(kind="integrity_failure", raised_at=datetime(2026, 5, 5, tzinfo=UTC)))
        s.flush()
        inc = close_incident(s, 1, mgr, "配線不良", "配線を交換し月次点検に追加")
        inc.closed_at = datetime(2026, 5, 4, tzinfo=UTC)
        s.add(
            DeletionRecord(
                created_at=datetime(2026, 5, 15, tzinfo=UTC),
                log="events",
                from_seq=0,
                to_seq=0,
                from_time=datetime(2020, 1, 1, tzinfo=UTC),
                to_time=datetime(2020, 1, 2, tzinfo=UTC),
                row_count=7,
                first_hash="1" * 64,
                last_hash="2" * 64,
                approved_by=mgr.id,
            )
        )
        cps = create_checkpoints(
            s, load_key(key_path), zone=TOKYO, now=datetime(2026, 5, 31, 14, tzinfo=UTC)
        )
        facts["checkpoint_hashes"] = {c.hash for c in cps}
        facts["area_ids"] = [a.id for a in areas]
        s.commit()
    return facts


@pytest.fixture
def month(session_factory, tmp_path):  # type: ignore[no-untyped-def]
    key_path = tmp_path / "k" / "checkpoint.key"
    generate_key(key_path)
    facts = seed(session_factory, random.Random(20260501), key_path)
    with session_factory() as s:
        report = build_monthly_report(
            s, MONTH, zone=TOKYO, site_name="テスト事業所", now=datetime(2026, 7, 1, tzinfo=UTC)
        )
    return facts, report


def test_entries_exits_denials_match_independent_count(month) -> None:
    facts, report = month
    by_code = {a.code: a for a in report.areas}
    for code, area_id in zip(["server-room", "mn-room"], facts["area_ids"], strict=True):
        ins, outs, denials = Counter(), Counter(), Counter()
        for t, a, pid, direction, decision, reason, _ in facts["events"]:
            if a != area_id or not _in_month(t):
                continue
            if decision == "granted":
                (ins if direction == "in" else outs)[pid] += 1
            else:
                denials[reason] += 1
        sec = by_code[code]
        assert {p.person_id: p.entries for p in sec.people if p.entries} == dict(ins)
        assert {p.person_id: p.exits for p in sec.people if p.exits} == dict(outs)
        assert {d.reason: d.count for d in sec.denials} == dict(denials)
        assert sum(ins.values()) > 10 and sum(denials.values()) > 3  # the data is not trivial


def test_still_inside_matches_last_event_rule(month) -> None:
    facts, report = month
    for sec, area_id in zip(report.areas, sorted(facts["area_ids"], reverse=True), strict=True):
        # areas come sorted by code: mn-room (2nd created) before server-room
        expected = set()
        d = date(2026, 5, 1)
        while d.month == 5:
            end = datetime.combine(d, time(20, 0), TOKYO)
            last: dict[int, str] = {}
            for t, a, pid, direction, decision, *_ in facts["events"]:
                if a == area_id and decision == "granted" and t <= end:
                    last[pid] = direction
            expected |= {(d, pid) for pid, direction in last.items() if direction == "in"}
            d += timedelta(days=1)
        assert {(x.day, x.person_id) for x in sec.still_inside} == expected
        assert expected


def test_visits_alarms_incidents_deletions_checkpoints(month) -> None:
    facts, report = month
    server = next(a for a in report.areas if a.code == "server-room")
    assert [v.purpose for v in server.visits] == ["=保守点検 0", "=保守点検 1"]
    assert server.visits[0].devices == "laptop (SN0)" and server.visits[0].escort == "従業者0"
    for v in server.visits:
        expected = sum(
            1
            for t, a, pid, direction, decision, _, visit_id in facts["events"]
            if visit_id == v.visit_id and decision == "granted" and direction == "in"
            and _in_month(t) and a == facts["area_ids"][0]  # entries into the visit's area
        )  # fmt: skip
        assert v.entries == expected
    assert [a.raised_at.day for a in server.alarms] == [3]  # the April one is not in May
    assert server.incidents[0].cause == "配線不良" and server.incidents[0].state == "closed"
    assert [a.kind for a in report.site_alarms] == ["integrity_failure"]
    assert [d.row_count for d in report.deletions] == [7]
    assert {c.hash for c in report.checkpoints} == facts["checkpoint_hashes"]
    assert len(report.public_keys) == 1


def test_csv_is_excel_friendly_and_has_no_secrets(month, tmp_path) -> None:
    _, report = month
    path = tmp_path / "r.csv"
    write_monthly_csv(report, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    text = raw.decode("utf-8-sig")
    assert MY_NUMBER not in text and PIN not in text and "0102030405060708" not in text
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    visitor_rows = [r for r in rows if r[:2] == ["visitors", "server-room"] and len(r) > 3]
    assert [r[4] for r in visitor_rows] == ["'=保守点検 0", "'=保守点検 1"]
    cp_rows = [r for r in rows if r[0] == "checkpoints" and len(r) == 6]
    assert {r[5] for r in cp_rows} == {c.hash for c in report.checkpoints}
    assert len(cp_rows) == 2


def test_pdf_renders_japanese_and_has_no_secrets(month, tmp_path) -> None:
    _, report = month
    path = tmp_path / "r.pdf"
    write_monthly_pdf(report, path)
    assert path.read_bytes().startswith(b"%PDF")
    assert monthly_pdf(report).startswith(b"%PDF")  # the web's download
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "特定個人情報等取扱状況報告書" in text and "サーバ室" in text and "従業者0" in text
    assert report.checkpoints[0].hash in text.replace(" ", "").replace("\n", "")
    assert MY_NUMBER not in text and PIN not in text


def test_area_filter_and_bad_month(session_factory) -> None:
    with session_factory() as s:
        with pytest.raises(ReportError):
            build_monthly_report(s, "2026-13", zone=TOKYO)
        with pytest.raises(ReportError, match="nowhere"):
            build_monthly_report(s, MONTH, zone=TOKYO, area_codes=["nowhere"])


def test_month_bounds_are_tokyo() -> None:
    start, end = month_bounds("2026-12", TOKYO)
    assert start == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 15, tzinfo=UTC)


def test_pdf_without_japanese_font_is_a_clear_error(month, tmp_path, monkeypatch) -> None:
    from db.reports.fonts import FontMissingError

    _, report = month
    monkeypatch.setenv("NYUTAI_PDF_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(FontMissingError, match="none.ttf"):
        write_monthly_pdf(report, tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_a_grant_whose_door_never_opened_is_no_entry(session_factory) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 5, 12, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    with session_factory() as s:
        area = Area(code="server-room", name="サーバ室")
        person = Person(name="山田 太郎", designated=True)
        s.add_all([area, person])
        s.flush()

        def ev(minutes: int, **kw: object) -> Event:
            fields = {
                "occurred_at": at + timedelta(minutes=minutes),
                "kind": "presentation",
                "area_id": area.id,
                "person_id": person.id,
                **kw,
            }
            return append_event(s, Event(**fields))

        used = ev(0, direction="in", decision="granted", reason="granted")
        ev(1, direction="out", decision="granted", reason="exit")
        unused = ev(2, direction="in", decision="granted", reason="granted")
        ev(
            3,
            direction="in",
            decision="info",
            reason="not_used",
            detail={"granted_event_id": unused.id},
        )
        assert used.id != unused.id
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=datetime(2026, 7, 1, tzinfo=UTC))
    (sec,) = report.areas
    (line,) = sec.people
    assert (line.entries, line.exits) == (1, 1)
    assert sec.still_inside == []  # the unused grant did not put anyone inside


def test_still_inside_across_the_month_start(session_factory) -> None:  # type: ignore[no-untyped-def]
    """Occupancy at the month start is carried into every day end; unused grants are no entry.

    The report computes who is inside at the month start with one query instead of replaying
    the whole log, so the cases that query must get right are set up around the boundary.
    """
    m0, _ = month_bounds(MONTH, TOKYO)
    with session_factory() as s:
        area, other = Area(code="server-room", name="サーバ室"), Area(code="x", name="別室")
        s.add_all([area, other])
        s.flush()
        door = Door(code="d", name="扉", area_id=area.id)
        names = ["stays", "unused", "left", "twice", "late_unused", "via_door", "at_start"]
        names += ["tie_back_in", "tie_out"]
        people = {n: Person(name=n, designated=True) for n in names}
        s.add_all([door, *people.values()])
        s.flush()

        def ev(who: str, at: datetime, direction: str, **kw: object) -> Event:
            fields: dict[str, object] = {
                "occurred_at": at,
                "kind": "presentation",
                "area_id": area.id,
                "person_id": people[who].id,
                "direction": direction,
                "decision": "granted",
                "reason": "granted",
                **kw,
            }
            return append_event(s, Event(**fields))

        def not_used(who: str, grant: Event, at: datetime) -> None:
            ev(
                who, at, grant.direction or "in", decision="info", reason="not_used",
                detail={"granted_event_id": grant.id},
            )  # fmt: skip

        day = timedelta(days=1)
        ev("stays", m0 - 20 * day, "in")  # entered in April, never left
        ev("stays", m0 - 2 * day, "out", area_id=other.id)  # leaving another area changes nothing
        g = ev("unused", m0 - timedelta(seconds=1), "in")  # door never opened; the not_used
        not_used("unused", g, m0 + timedelta(seconds=9))  # row is written after the month start
        ev("left", m0 - 9 * day, "in")
        ev("left", m0 - 8 * day, "out")
        g = ev("left", m0 - 3 * day, "in")  # came back, but the door was never opened
        not_used("left", g, m0 - 3 * day + timedelta(seconds=9))
        ev("twice", m0 - 10 * day, "in")  # two entries without an exit keep the first time
        ev("twice", m0 - 5 * day, "in")
        ev("twice", m0 + 14 * day + timedelta(hours=1), "out")  # 15th, 10:00 in Tokyo
        ev("late_unused", m0 - 4 * day, "in")
        ev("late_unused", m0 - 3 * day, "out")
        g = ev("late_unused", m0 + 2 * day, "in")  # in the month, unused: still no entry
        not_used("late_unused", g, m0 + 2 * day + timedelta(seconds=9))
        ev("via_door", m0 - day, "in", area_id=None, door_id=door.id)  # area from the door
        ev("at_start", m0 - day, "in")
        ev("at_start", m0, "out")  # left at the very first instant of the month
        # an exit and an entry at the same instant: the chain order (seq) decides
        ev("tie_back_in", m0 - 6 * day, "in")
        ev("tie_back_in", m0 - 2 * day, "out")
        ev("tie_back_in", m0 - 2 * day, "in")  # back in, so inside since this instant
        ev("tie_out", m0 - 2 * day, "in")
        ev("tie_out", m0 - 2 * day, "out")  # and straight out again: not inside
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=datetime(2026, 7, 1, tzinfo=UTC))
    sec = next(a for a in report.areas if a.code == "server-room")
    by_person: dict[str, list] = {}
    for line in sec.still_inside:
        by_person.setdefault(line.name, []).append(line)
    may = [date(2026, 5, d) for d in range(1, 32)]
    assert set(by_person) == {"stays", "twice", "via_door", "tie_back_in"}
    assert {x.since for x in by_person["tie_back_in"]} == {m0 - 2 * day}
    assert [x.day for x in by_person["tie_back_in"]] == may
    assert [x.day for x in by_person["stays"]] == may
    assert {x.since for x in by_person["stays"]} == {m0 - 20 * day}
    assert [x.day for x in by_person["twice"]] == may[:14]
    assert {x.since for x in by_person["twice"]} == {m0 - 10 * day}
    assert [x.day for x in by_person["via_door"]] == may
    # each day's lines come in order of entry time
    first_day = [x.name for x in sec.still_inside if x.day == may[0]]
    assert first_day == ["stays", "twice", "tie_back_in", "via_door"]
    assert {p.name: (p.entries, p.exits) for p in sec.people} == {
        "twice": (0, 1),
        "at_start": (0, 1),
    }


def test_still_inside_with_unused_grants_matches_a_full_replay(session_factory) -> None:  # type: ignore[no-untyped-def]
    """Random crossings and unused grants on both sides of the month start, against a replay
    of the whole log computed here (the rule the report used before it was made bounded)."""
    rnd = random.Random(7)
    m0, m1 = month_bounds(MONTH, TOKYO)
    with session_factory() as s:
        area = Area(code="server-room", name="サーバ室")
        people = [Person(name=f"p{i}", designated=True) for i in range(8)]
        s.add_all([area, *people])
        s.flush()
        log: list[tuple[datetime, int, str, int]] = []  # (time, person, direction, event id)
        unused: set[int] = set()
        t = m0 - timedelta(days=20)
        while t < m1:
            t += timedelta(minutes=rnd.randrange(1, 600))
            p = rnd.choice(people)
            direction = rnd.choice(["in", "in", "out"])
            e = append_event(
                s,
                Event(
                    occurred_at=t, kind="presentation", area_id=area.id, person_id=p.id,
                    direction=direction, decision="granted", reason="granted",
                ),
            )  # fmt: skip
            log.append((t, p.id, direction, e.id))
            if rnd.random() < 0.25:  # door never opened; the row may land after the month start
                t += timedelta(seconds=rnd.randrange(1, 30))
                append_event(
                    s,
                    Event(
                        occurred_at=t, kind="presentation", area_id=area.id, person_id=p.id,
                        direction=direction, decision="info", reason="not_used",
                        detail={"granted_event_id": e.id},
                    ),
                )  # fmt: skip
                unused.add(e.id)
        s.commit()
        report = build_monthly_report(s, MONTH, zone=TOKYO, now=datetime(2026, 7, 1, tzinfo=UTC))
    expected = []
    d = date(2026, 5, 1)
    while d.month == 5:
        end = datetime.combine(d, time(20, 0), TOKYO)
        inside: dict[int, datetime] = {}
        for when, pid, direction, eid in log:
            if when > end or eid in unused:
                continue
            if direction == "in":
                inside.setdefault(pid, when)
            else:
                inside.pop(pid, None)
        expected += [(d, pid, since) for pid, since in sorted(inside.items(), key=lambda x: x[1])]
        d += timedelta(days=1)
    (sec,) = report.areas
    assert [(x.day, x.person_id, x.since) for x in sec.still_inside] == expected
    assert any(when < m0 and eid in unused for when, _, _, eid in log)
    assert len({pid for _, pid, _ in expected}) > 2


def test_pdf_grid_pages_and_wraps_long_tables(tmp_path) -> None:
    """The table drawing: every row printed, the heading on each page, long text wrapped."""
    from db.reports.pdf import ReportPDF

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    long_text = "再発防止策として配線を交換し月次点検に追加した。" * 4
    rows = [[f"行{i:03d}", "従業者", long_text if i == 150 else f"値{i}"] for i in range(300)]
    pdf = ReportPDF("grid")
    pdf.grid(["見出しA / Head A", "区分", "内容 / Text"], rows, (30, 30, 130))
    path = tmp_path / "g.pdf"
    pdf.save(path)
    pages = subprocess.run(
        ["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")  # -raw: content order (-layout interleaves a two-line cell)
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 3
    assert all("見出しA / Head A" in p for p in pages)  # heading repeated on every page
    flat = "".join(pages).replace(" ", "").replace("\n", "")
    assert all(f"行{i:03d}" in flat for i in range(300))
    assert long_text in flat  # wrapped over lines inside its cell, nothing lost


def test_a_month_under_another_zone_has_that_zone_s_month_and_day_boundaries(
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    """A New York site's March: its first and last hours in local time (EST, then EDT after
    8 March), each day's end at 20:00 New York time, and every time printed in that zone."""
    new_york = ZoneInfo("America/New_York")
    with session_factory() as s:
        area = Area(code="server-room", name="サーバ室")
        early, late, night = (Person(name=n, designated=True) for n in ("early", "late", "night"))
        s.add_all([area, early, late, night])
        s.flush()

        def ev(who: Person, at: datetime, direction: str) -> None:
            append_event(
                s,
                Event(
                    occurred_at=at, kind="presentation", area_id=area.id, person_id=who.id,
                    direction=direction, decision="granted", reason="granted",
                ),
            )  # fmt: skip

        ev(early, datetime(2026, 3, 1, 4, 30, tzinfo=UTC), "in")  # Feb 28 23:30 EST: February
        ev(early, datetime(2026, 3, 1, 4, 40, tzinfo=UTC), "out")
        ev(late, datetime(2026, 3, 1, 5, 30, tzinfo=UTC), "in")  # Mar 1 00:30 EST: March
        ev(late, datetime(2026, 3, 1, 5, 40, tzinfo=UTC), "out")
        ev(late, datetime(2026, 4, 1, 3, 30, tzinfo=UTC), "in")  # Mar 31 23:30 EDT: March
        ev(late, datetime(2026, 4, 1, 3, 40, tzinfo=UTC), "out")
        ev(early, datetime(2026, 4, 1, 4, 30, tzinfo=UTC), "in")  # Apr 1 00:30 EDT: April
        ev(early, datetime(2026, 4, 1, 4, 40, tzinfo=UTC), "out")
        # in at 19:30 EDT on 10 March, out at 20:45: inside at that day's 20:00 end
        ev(night, datetime(2026, 3, 10, 23, 30, tzinfo=UTC), "in")
        ev(night, datetime(2026, 3, 11, 0, 45, tzinfo=UTC), "out")
        s.commit()
        now = datetime(2026, 5, 1, tzinfo=UTC)
        ny = build_monthly_report(s, "2026-03", zone=new_york, now=now)
        tokyo = build_monthly_report(s, "2026-03", zone=TOKYO, now=now)

    assert ny.start == datetime(2026, 3, 1, 5, tzinfo=UTC)  # midnight EST
    assert ny.end == datetime(2026, 4, 1, 4, tzinfo=UTC)  # midnight EDT
    (sec,) = ny.areas
    assert {p.name: p.entries for p in sec.people} == {"late": 2, "night": 1}
    assert [(x.day, x.name) for x in sec.still_inside] == [(date(2026, 3, 10), "night")]
    # the same rows under Tokyo's calendar: other months, other day ends
    (tokyo_sec,) = tokyo.areas
    assert {p.name: p.entries for p in tokyo_sec.people} == {"early": 1, "late": 1, "night": 1}
    assert tokyo_sec.still_inside == []

    text = monthly_csv(ny)
    assert "2026-03-01 00:00 – 2026-04-01 00:00 (America/New_York)" in text
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    assert ["still_inside", "server-room", "2026-03-10", "night", "従業者", "2026-03-10 19:30"] in (
        rows
    )
