"""Monthly report page: a seeded month's figures on the page, CSV (BOM) and PDF downloads."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.checkpoints import generate_key
from db.eventlog import append_event
from db.models import Alarm, AuditLog, Checkpoint, Event, Incident, Person, Visit
from db.types import utcnow
from tests.web.conftest import Auth, Site, report_page
from tests.web.test_web_i18n import english_words

TOKYO = ZoneInfo("Asia/Tokyo")
MONTH = "2026-09"
CHECKPOINT_HASH = "cd" * 32


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


@pytest.fixture
def month(site: Site, data_dir: Path, session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """September 2026 in the server room: Tanaka 3 in / 2 out (still inside from the 12th),
    three denials, one visit, a forced door with a closed incident, a checkpoint."""
    pub = generate_key(data_dir / "keys" / "checkpoint.key")
    with session_factory() as s:
        visitor = Person(name="外部 四郎", kind="visitor", organization="空調保守株式会社")
        s.add(visitor)
        s.flush()

        def ev(when: datetime, person: int | None, decision: str, reason: str, d: str) -> None:
            append_event(
                s,
                Event(
                    occurred_at=when,
                    kind="presentation",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    direction=d,
                    person_id=person,
                    decision=decision,
                    reason=reason,
                ),
            )

        for day, (tin, tout) in {10: (10, 11), 11: (10, 12), 12: (10, None)}.items():
            ev(jst(2026, 9, day, tin), site.tanaka, "granted", "granted", "in")
            if tout:
                ev(jst(2026, 9, day, tout), site.tanaka, "granted", "exit", "out")
        ev(jst(2026, 9, 13, 9), site.suzuki, "denied", "training_expired", "in")
        ev(jst(2026, 9, 14, 9), site.suzuki, "denied", "training_expired", "in")
        ev(jst(2026, 9, 14, 9, 5), None, "denied", "unknown_card", "in")
        # 1 October 00:30 in Tokyo is still 30 September in UTC: not September's
        ev(jst(2026, 10, 1, 0, 30), site.tanaka, "granted", "granted", "in")
        s.add(
            Visit(
                visitor_id=visitor.id,
                area_id=site.server_room,
                purpose="空調点検",
                host_id=site.tanaka,
                escort_id=site.tanaka,
                declared_devices=[{"kind": "maintenance-laptop", "serial": "SN-1"}],
                expected_from=jst(2026, 9, 15, 13),
                expected_until=jst(2026, 9, 15, 17),
            )
        )
        alarm = Alarm(
            kind="door_forced",
            door_id=site.sr_door,
            raised_at=jst(2026, 9, 20, 2),
            state="cleared",
            ack_comment="巡回で確認",
            cleared_at=jst(2026, 9, 20, 3),
        )
        s.add(alarm)
        s.flush()
        s.add(
            Incident(
                kind="door_forced",
                state="closed",
                opened_at=alarm.raised_at,
                alarm_id=alarm.id,
                area_id=site.server_room,
                summary="扉のこじ開け / Door forced open (サーバ室 扉)",
                evidence={"events": [], "snapshots": []},
                cause="扉の閉まりが悪かった",
                prevention="ドアクローザーを交換",
                closed_at=jst(2026, 9, 21, 10),
            )
        )
        s.add(
            Checkpoint(
                log="events",
                seq=9,
                hash=CHECKPOINT_HASH,
                created_at=jst(2026, 9, 30, 23),
                signature=b"x" * 64,
                public_key=pub,
            )
        )
        s.commit()
    return {"public_key": pub}


def test_page_shows_the_seeded_month(auth: Auth, site: Site, month: dict[str, Any]) -> None:
    auth.login("manager")
    html = report_page(auth.client, f"/reports/monthly?month={MONTH}")
    summary = html.split('id="summary-server-room"')[1].split("</tr>")[0]
    assert '<td class="num entries">3</td><td class="num exits">2</td>' in summary
    empty = html.split('id="summary-mynumber-room"')[1].split("</tr>")[0]
    assert '<td class="num entries">0</td><td class="num exits">0</td>' in empty
    person = html.split(f'id="person-server-room-{site.tanaka}"')[1].split("</tr>")[0]
    assert "田中 一郎" in person and ">3<" in person and ">2<" in person
    # denials by reason, as the controller's sentence
    denial = html.split('class="denial training_expired"')[1].split("</tr>")[0]
    assert "研修" in denial and '<td class="num">2</td>' in denial
    assert 'class="denial unknown_card"' in html and "登録されていないカードです。" in html
    # the visit: purpose, escort, devices
    assert "空調点検" in html and "外部 四郎" in html and "maintenance-laptop (SN-1)" in html
    window = html.split('class="visit-window">')[1].split("</td>")[0]
    assert window == "2026-09-15 13:00 – 2026-09-15 17:00"  # the window with its end, dated
    # alarm handling and incident closing notes
    assert (
        "巡回で確認" in html and "扉の閉まりが悪かった" in html and "ドアクローザーを交換" in html
    )  # fmt: skip
    # still inside at day end: Tanaka from the 12th
    area = html.split('id="area-server-room"')[1]
    inside = area.split('class="list inside-table"')[1].split("</table>")[0]
    assert "2026-09-12" in inside and "田中 一郎" in inside and "2026-09-11" not in inside
    assert CHECKPOINT_HASH in html and month["public_key"] in html
    assert english_words(html) == set(), "the Japanese page shows English text"


def test_area_filter_and_bad_input(auth: Auth, month: dict[str, Any]) -> None:
    auth.login("auditor")
    html = report_page(auth.client, f"/reports/monthly?month={MONTH}&area=mynumber-room")
    assert 'id="area-mynumber-room"' in html and 'id="area-server-room"' not in html
    resp = auth.client.get(f"/reports/monthly?month={MONTH}&area=no-such-room")
    assert resp.status_code == 200 and "該当する管理区域はありません。" in resp.text
    resp = auth.client.get("/reports/monthly?month=2026-13")
    assert resp.status_code == 200 and "YYYY-MM" in resp.text
    assert auth.client.get("/reports/monthly.csv?month=September").status_code == 400


def test_default_month_is_last_month_in_tokyo(auth: Auth, site: Site) -> None:
    now = utcnow().astimezone(TOKYO)
    expected = f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"
    auth.login("manager")
    html = auth.client.get("/reports/monthly").text
    assert f'name="month" value="{expected}"' in html
    assert f"month={expected}" in html  # the download links follow


def test_csv_download(
    auth: Auth, site: Site, month: dict[str, Any], session_factory: sessionmaker[Session]
) -> None:
    auth.login("manager")
    resp = auth.client.get(f"/reports/monthly.csv?month={MONTH}&area=server-room")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert "2026-09" in resp.headers["Content-Disposition"]
    assert resp.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert ["month", MONTH] in rows
    assert ["entries_exits", "server-room", "田中 一郎", "従業者", "", "3", "2"] in rows
    denials = {r[2]: r[-1] for r in rows if r[:2] == ["denials", "server-room"] and len(r) > 3}
    assert denials == {"training_expired": "2", "unknown_card": "1"}
    assert [r[0] for r in rows if len(r) > 1 and r[1] == "mynumber-room"] == []
    assert [month["public_key"]] in [r[2:] for r in rows if r and r[0] == "public_keys"]
    with session_factory() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "report.monthly_csv")).one()
        assert row.after == {"month": MONTH, "area": "server-room", "controller": None}


def test_pdf_download(auth: Auth, month: dict[str, Any]) -> None:
    auth.login("auditor")
    resp = auth.client.get(f"/reports/monthly.pdf?month={MONTH}")
    assert resp.status_code == 200, resp.text
    assert resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert resp.headers["Content-Disposition"].startswith("attachment;")


def test_pdf_without_japanese_font_gives_a_clear_page(
    auth: Auth, month: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NYUTAI_PDF_FONT", str(tmp_path / "no-such-font.ttf"))
    auth.login("manager")
    resp = auth.client.get(f"/reports/monthly.pdf?month={MONTH}")
    assert resp.status_code == 503
    assert resp.mimetype == "text/html"
    assert "日本語フォントがありません" in resp.text and "fonts-ipaexfont-gothic" in resp.text


def test_guard_and_administrator_are_refused(app: Flask, auth: Auth, site: Site) -> None:
    for role in ("guard", "administrator"):
        auth.client.delete_cookie("nyutai_session")
        auth.login(role)
        for path in ("/reports/monthly", "/reports/monthly.csv", "/reports/monthly.pdf"):
            assert auth.client.get(path).status_code == 403
        assert "/reports/monthly" not in auth.client.get("/dashboard").text


def test_a_long_report_is_built_in_the_background_with_progress(
    auth: Auth, month: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that takes longer than the page's wait: the page answers at once with its
    progress and reloads itself; once built, the same page shows the report."""
    import threading
    import time

    import web.views.reports as views

    gate = threading.Event()
    real = views.build_monthly_report

    def slow(*args: Any, **kw: Any) -> Any:
        kw["progress"](1, 4, "day ends")
        assert gate.wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(views, "build_monthly_report", slow)
    monkeypatch.setattr(views, "WAIT", 0.05)
    auth.login("manager")
    html = auth.client.get(f"/reports/monthly?month={MONTH}").text
    assert 'id="report-progress"' in html and "25%" in html
    assert '<meta http-equiv="refresh"' in html and 'id="report-summary"' not in html
    gate.set()
    for _ in range(200):
        html = auth.client.get(f"/reports/monthly?month={MONTH}").text
        if 'id="report-summary"' in html:
            break
        time.sleep(0.05)
    summary = html.split('id="summary-server-room"')[1].split("</tr>")[0]
    assert '<td class="num entries">3</td><td class="num exits">2</td>' in summary
    assert 'id="report-progress"' not in html


@pytest.fixture
def two_controllers(site: Site, session_factory: sessionmaker[Session]) -> None:
    """September 2026 on two controllers: bldg-a runs the server room's door, bldg-b its
    back door and the My Number room's door. Tanaka enters at A's door twice and leaves at
    B's back door once (still inside from the 11th); Suzuki is refused once at each."""
    from db.models import Door

    with session_factory() as s:
        s.get(Door, site.sr_door).controller = "bldg-a"  # type: ignore[union-attr]
        s.get(Door, site.mn_door).controller = "bldg-b"  # type: ignore[union-attr]
        back = Door(code="server-room-back", name="サーバ室 裏扉", area_id=site.server_room,
                    controller="bldg-b")  # fmt: skip
        s.add(back)
        s.flush()

        def ev(when: datetime, who: int, door: int, ctl: str, decision: str, d: str) -> None:
            append_event(
                s,
                Event(
                    controller=ctl,
                    occurred_at=when,
                    kind="presentation",
                    door_id=door,
                    area_id=site.server_room,
                    direction=d,
                    person_id=who,
                    decision=decision,
                    reason="granted" if decision == "granted" else "training_expired",
                ),
            )

        ev(jst(2026, 9, 10, 9), site.tanaka, site.sr_door, "bldg-a", "granted", "in")
        ev(jst(2026, 9, 10, 18), site.tanaka, back.id, "bldg-b", "granted", "out")
        ev(jst(2026, 9, 11, 9), site.tanaka, site.sr_door, "bldg-a", "granted", "in")
        ev(jst(2026, 9, 12, 9), site.suzuki, site.sr_door, "bldg-a", "denied", "in")
        ev(jst(2026, 9, 12, 10), site.suzuki, back.id, "bldg-b", "denied", "in")
        s.commit()


def test_monthly_report_controller_filter(
    site: Site, two_controllers: None, session_factory: sessionmaker[Session]
) -> None:
    from db.reports.monthly import ReportError, build_monthly_report
    from db.reports.monthly_csv import monthly_csv

    def build(controllers: list[str] | None) -> Any:
        with session_factory() as s:
            return build_monthly_report(s, MONTH, zone=TOKYO, controllers=controllers)

    every = build(None)
    assert every.all_controllers and {"bldg-a", "bldg-b"} <= set(every.controllers)
    sr = {a.code: a for a in every.areas}["server-room"]
    assert (sr.entries, sr.exits, sum(d.count for d in sr.denials)) == (2, 1, 2)
    assert {a.code for a in every.areas} == {"server-room", "mynumber-room"}

    only_a = build(["bldg-a"])
    assert not only_a.all_controllers and only_a.controllers == ["bldg-a"]
    assert [a.code for a in only_a.areas] == ["server-room"]  # the areas with a door of A
    sr = only_a.areas[0]
    assert (sr.entries, sr.exits, sum(d.count for d in sr.denials)) == (2, 0, 1)
    # who was inside at day end is the area's, whichever door: out at B on the 10th
    per_day = dict(sr.inside_per_day)
    assert per_day[datetime(2026, 9, 10).date()] == 0 and per_day[datetime(2026, 9, 11).date()] == 1

    only_b = build(["bldg-b"])
    assert [a.code for a in only_b.areas] == ["mynumber-room", "server-room"]
    sr = {a.code: a for a in only_b.areas}["server-room"]
    assert (sr.entries, sr.exits, sum(d.count for d in sr.denials)) == (0, 1, 1)

    rows = list(csv.reader(io.StringIO(monthly_csv(only_a))))
    assert [r for r in rows if r and r[0] == "controllers"][0][1].startswith("bldg-a のみ")
    rows = list(csv.reader(io.StringIO(monthly_csv(every))))
    covered = [r for r in rows if r and r[0] == "controllers"][0][1]
    assert covered.startswith("全制御装置") and "bldg-a" in covered and "bldg-b" in covered
    with pytest.raises(ReportError, match="controller"):
        build(["nobody"])


def test_monthly_report_page_controller_filter(
    auth: Auth, site: Site, two_controllers: None, session_factory: sessionmaker[Session]
) -> None:
    auth.login("manager")
    html = report_page(auth.client, f"/reports/monthly?month={MONTH}")
    assert 'name="controller"' in html and '<option value="bldg-b">bldg-b</option>' in html
    note = html.split('id="report-controllers">')[1].split("</p>")[0]
    assert "制御装置: すべて" in note and "bldg-a" in note and "bldg-b" in note
    summary = html.split('id="summary-server-room"')[1].split("</tr>")[0]
    assert '<td class="num entries">2</td><td class="num exits">1</td>' in summary
    html = report_page(auth.client, f"/reports/monthly?month={MONTH}&controller=bldg-b")
    assert "制御装置: bldg-b のみ" in html
    summary = html.split('id="summary-server-room"')[1].split("</tr>")[0]
    assert '<td class="num entries">0</td><td class="num exits">1</td>' in summary
    assert "controller=bldg-b" in html.split('id="download-csv"')[1].split(">")[0]
    resp = auth.client.get(f"/reports/monthly.csv?month={MONTH}&controller=bldg-a")
    assert resp.status_code == 200 and "bldg-a" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert ["entries_exits", "server-room", "田中 一郎", "従業者", "", "2", "0"] in rows
    with session_factory() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "report.monthly_csv")).one()
        assert row.after == {"month": MONTH, "area": None, "controller": "bldg-a"}
    resp = auth.client.get(f"/reports/monthly?month={MONTH}&controller=nobody")
    assert "その制御装置はありません。" in resp.text
    assert (
        auth.client.get(f"/reports/monthly.csv?month={MONTH}&controller=nobody").status_code == 400
    )
