"""Issue 13, visitors: pre-registration and the upcoming list, past visits refused, sign-out
while inside, the desk photo, the badge PDF, host notifications through a real SMTP server
on loopback (aiosmtpd), retries when the server fails, and the queue's status page."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select

from db.eventlog import append_event
from db.models import AuditLog, Command, Event, Notification, Person, Presence, Visit
from db.types import utcnow
from domain.config import MailSection, SiteConfig
from tests.web.conftest import Auth, Site
from tests.web.visit_helpers import Mailbox, jpeg, pdf_text, smtp_server, visit_form
from web.notify import BackgroundDuties

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    yield from smtp_server()


def _register(auth: Auth, site: Site, days: int = 0, **over: str) -> Any:
    return auth.post("/visitors/", visit_form(site, days, **over), page="/visitors/")


def _only_visit(factory: Any) -> int:
    with factory() as s:
        return int(s.scalars(select(Visit.id)).one())


def _section(html: str, list_id: str) -> str:
    return html.split(f'id="{list_id}"')[1].split("</ul>")[0]


def test_a_later_visit_is_listed_as_upcoming_and_filtered(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("guard")
    resp = _register(auth, site, days=2)
    assert resp.status_code == 302
    page = auth.client.get("/visitors/").text
    assert "来訪予定の一覧に表示されます" in page  # the flash says where it went
    assert "山田 太郎" in _section(page, "upcoming-list")
    assert "山田 太郎" not in _section(page, "visit-list")
    _register(auth, site, days=3, name="別の 来訪者", host_id=str(site.tanaka))
    day = (utcnow().astimezone(TOKYO) + timedelta(days=2)).date().isoformat()
    by_day = auth.client.get(f"/visitors/?day={day}").text
    assert "山田 太郎" in _section(by_day, "upcoming-list")
    assert "別の 来訪者" not in _section(by_day, "upcoming-list")
    assert 'id="visit-list"' not in by_day  # a later day: only the upcoming list
    host_page = auth.client.get(f"/visitors/?host={site.tanaka}").text
    by_host = _section(host_page, "upcoming-list")
    assert "別の 来訪者" in by_host and "山田 太郎" not in by_host
    # the host filter names only the chosen host (others are found through hosts.json)
    filter_select = host_page.split('id="filter-host"')[1].split("</select>")[0]
    assert f'value="{site.tanaka}" selected' in filter_select
    assert filter_select.count("<option") == 2  # "All" and the chosen host
    unfiltered = auth.client.get("/visitors/").text.split('id="filter-host"')[1]
    assert unfiltered.split("</select>")[0].count("<option") == 1
    by_area = auth.client.get(f"/visitors/?area={site.mynumber_room}").text
    assert "No upcoming visits." in by_area or "来訪予定はありません" in by_area


def test_upcoming_list_pages_instead_of_growing(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    from web.views.visitors import UPCOMING_PAGE

    with session_factory() as s:
        start = utcnow() + timedelta(days=3)
        for i in range(UPCOMING_PAGE + 3):
            p = Person(kind="visitor", name=f"来訪者{i:03d}")
            s.add(p)
            s.flush()
            s.add(
                Visit(
                    visitor_id=p.id,
                    area_id=site.server_room,
                    purpose="点検",
                    escort_id=site.tanaka,
                    expected_from=start + timedelta(minutes=i),
                    expected_until=start + timedelta(hours=2),
                )
            )
        s.commit()
    auth.login("guard")
    first = auth.client.get("/visitors/").text
    shown = _section(first, "upcoming-list").count('class="visit upcoming"')
    assert shown == UPCOMING_PAGE and "来訪者000" in first and "来訪者025" not in first
    next_url = first.split('class="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = _section(auth.client.get(next_url).text, "upcoming-list")
    assert "来訪者025" in second and "来訪者027" in second and "来訪者000" not in second


def test_todays_list_pages_instead_of_growing(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    from web.views.visitors import TODAY_LIMIT

    with session_factory() as s:
        start = utcnow() - timedelta(hours=1)
        for i in range(TODAY_LIMIT + 3):
            p = Person(kind="visitor", name=f"本日客{i:03d}")
            s.add(p)
            s.flush()
            s.add(
                Visit(
                    visitor_id=p.id,
                    area_id=site.server_room,
                    purpose="点検",
                    escort_id=site.tanaka,
                    expected_from=start + timedelta(seconds=i),
                    expected_until=start + timedelta(hours=3),
                )
            )
        s.commit()
    auth.login("guard")
    first = auth.client.get("/visitors/").text
    shown = _section(first, "visit-list").count('<li id="visit-')
    assert shown == TODAY_LIMIT and "本日客000" in first and f"本日客{TODAY_LIMIT:03d}" not in first
    next_url = first.split('id="today-next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = auth.client.get(next_url).text
    rest = _section(second, "visit-list")
    assert rest.count('<li id="visit-') == 3 and f"本日客{TODAY_LIMIT + 2:03d}" in rest
    assert "本日客000" not in rest and 'id="today-next"' not in second


def test_a_visit_in_the_past_is_refused(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("guard")
    resp = _register(auth, site, days=-1)
    assert resp.status_code == 400 and "過去の来訪は登録できません" in resp.text
    with session_factory() as s:
        assert s.scalar(select(func.count(Visit.id))) == 0


def test_sign_out_while_inside_needs_the_exit_recorded(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    with session_factory() as s:
        visit = s.get(Visit, vid)
        s.add(
            Presence(
                person_id=visit.visitor_id,
                area_id=site.server_room,
                entered_at=utcnow(),
                visit_id=vid,
            )
        )
        s.commit()
    refused = auth.post(f"/visitors/{vid}/signout", {}, page="/visitors/")
    assert refused.status_code == 302
    page = auth.client.get("/visitors/").text
    assert "まだ管理区域内にいると記録されています" in page
    no_reason = auth.post(f"/visitors/{vid}/signout", {"record_exit": "1"}, page="/visitors/")
    assert no_reason.status_code == 302
    with session_factory() as s:
        assert s.get(Visit, vid).signed_out_at is None
        assert s.scalar(select(func.count(Command.id))) == 0
    auth.post(
        f"/visitors/{vid}/signout",
        {"record_exit": "1", "exit_reason": "非常口から退出、警備員が確認"},
        page="/visitors/",
    )
    with session_factory() as s:
        visit = s.get(Visit, vid)
        assert visit.signed_out_at is not None
        cmd = s.scalars(select(Command)).one()  # the controller clears presence, not the web
        assert cmd.kind == "forgive" and cmd.payload["person_id"] == visit.visitor_id
        row = s.scalars(select(AuditLog).where(AuditLog.action == "visit.exit_recorded")).one()
        assert row.after["reason"] == "非常口から退出、警備員が確認"
        assert row.after["areas"] == [site.server_room]


def test_the_desk_photo_is_stored_by_hash_and_shown(
    app: Flask, site: Site, auth: Auth, session_factory: Any, tmp_path: Path
) -> None:
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    photo = jpeg()
    token = auth.token("/visitors/")
    resp = auth.client.post(
        f"/visitors/{vid}/photo",
        data={"csrf_token": token, "photo": (__import__("io").BytesIO(photo), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    digest = hashlib.sha256(photo).hexdigest()
    with session_factory() as s:
        visit = s.get(Visit, vid)
        assert visit.photo is not None and visit.photo.sha256 == digest
        path = tmp_path / visit.photo.path
        photo_id = visit.photo_id
    assert path.name == f"{digest}.jpg" and path.read_bytes() == photo
    page = auth.client.get("/visitors/").text
    assert f"/visitors/photos/{photo_id}" in page
    served = auth.client.get(f"/visitors/photos/{photo_id}")
    assert served.status_code == 200 and served.data == photo
    assert served.headers["Content-Type"] == "image/jpeg"
    # only images, whatever the browser claims
    for data, name in (
        (b"<svg onload=alert(1)>" * 10, "x.jpg"),
        (b"GIF89a" + b"\0" * 100, "x.gif"),
    ):
        auth.client.post(
            f"/visitors/{vid}/photo",
            data={"csrf_token": token, "photo": (__import__("io").BytesIO(data), name)},
            content_type="multipart/form-data",
        )
        assert "JPEG または PNG" in auth.client.get("/visitors/").text
    with session_factory() as s:
        assert s.get(Visit, vid).photo_id == photo_id  # unchanged by the refusals
        visit = s.get(Visit, vid)
        append_event(
            s,
            Event(
                occurred_at=utcnow(),
                kind="presentation",
                direction="in",
                door_id=site.sr_door,
                area_id=site.server_room,
                person_id=visit.visitor_id,
                visitor=True,
                visit_id=vid,
                decision="granted",
                reason="granted_escorted",
            ),
        )
        s.add(
            Presence(
                person_id=visit.visitor_id,
                area_id=site.server_room,
                entered_at=utcnow(),
                visit_id=vid,
            )
        )
        s.commit()
    live = auth.client.get("/dashboard/live").text
    assert live.count(f"/visitors/photos/{photo_id}") == 2  # inside now + the event row
    auth.client.post("/logout", data={"csrf_token": auth.token("/dashboard")})
    auth.login("manager")
    assert f"/visitors/photos/{photo_id}" in auth.client.get("/events/").text


def test_badge_pdf_shows_the_visit(
    app: Flask, site: Site, auth: Auth, session_factory: Any, tmp_path: Path
) -> None:
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "iso14443a", "card_id": "04A1B2C3D4E5F6", "label": "V-042"},
        page="/visitors/",
    )
    resp = auth.client.get(f"/visitors/{vid}/badge.pdf")
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    text = pdf_text(resp.data, tmp_path)
    for needle in (
        "山田 太郎",
        "保守サービス株式会社",
        "佐藤 次郎",
        "田中 一郎",
        "サーバ室",
        "V-042",
    ):
        assert needle in text, needle
    assert "04A1B2C3D4E5F6" not in text  # the card's id is not printed


def _mail_app(app: Flask, smtp_port: int | None) -> MailSection:
    mail = (
        MailSection(
            host="127.0.0.1",
            port=smtp_port,
            sender="nyutai@example.jp",
            security="none",
            timeout_seconds=5,
        )
        if smtp_port
        else MailSection()
    )
    app.config["NYUTAI_MAIL"] = mail
    return mail


def _duties(mail: MailSection, factory: Any, tmp_path: Path) -> BackgroundDuties:
    cfg = SiteConfig(path=tmp_path / "site.toml", data_dir=tmp_path, mail=mail)
    return BackgroundDuties(cfg, factory)


def _give_addresses(factory: Any, site: Site) -> None:
    with factory() as s:
        s.get(Person, site.sato).email = "sato@example.jp"  # the host
        s.get(Person, site.tanaka).email = "tanaka@example.jp"  # the escort
        s.commit()


def test_host_and_escort_are_mailed_at_badge_issue_and_first_entry(
    app: Flask, site: Site, auth: Auth, session_factory: Any, smtp: Mailbox, tmp_path: Path
) -> None:
    mail = _mail_app(app, smtp.port)
    _give_addresses(session_factory, site)
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "0102030405069999", "label": "V-07"},
        page="/visitors/",
    )
    assert smtp.received == []  # the guard's request only queued the mails
    duties = _duties(mail, session_factory, tmp_path)
    assert duties.run_once() == (2, 0)
    (to_host,) = smtp.to("sato@example.jp")
    assert "来訪者 山田 太郎 様の入館バッジを発行しました" in to_host["Subject"]
    assert "Visitor badge issued" in to_host["Subject"]
    body = to_host.get_content()
    assert "保守サービス株式会社" in body and "A visitor badge was issued" in body
    assert "V-07" in body and "0102030405069999" not in body  # badge number, never the card id
    assert to_host["From"] == "nyutai@example.jp"
    assert len(smtp.to("tanaka@example.jp")) == 1
    # the first granted entry (found in the event log, not by the controller) mails them again
    with session_factory() as s:
        visitor_id = s.get(Visit, vid).visitor_id
        for _ in range(2):  # a second entry is not a first entry
            append_event(
                s,
                Event(
                    occurred_at=utcnow(),
                    kind="presentation",
                    direction="in",
                    door_id=site.sr_door,
                    area_id=site.server_room,
                    person_id=visitor_id,
                    visitor=True,
                    visit_id=vid,
                    decision="granted",
                    reason="granted_escorted",
                ),
            )
        s.commit()
    assert duties.run_once() == (2, 0)
    assert duties.run_once() == (0, 0)
    entered = smtp.to("sato@example.jp")[-1]
    assert "入室しました" in entered["Subject"] and "サーバ室" in entered.get_content()
    assert len(smtp.received) == 4
    auth.client.post("/logout", data={"csrf_token": auth.token("/dashboard")})
    auth.login("manager")
    status = auth.client.get("/notifications/").text
    assert 'data-state="sent">4<' in status


def test_a_failing_server_queues_and_retries_without_blocking_the_guard(
    app: Flask, site: Site, auth: Auth, session_factory: Any, smtp: Mailbox, tmp_path: Path
) -> None:
    mail = _mail_app(app, smtp.port)
    _give_addresses(session_factory, site)
    smtp.refuse = True
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    resp = auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "0102030405069999"},
        page="/visitors/",
    )
    assert resp.status_code == 302  # issued at once
    duties = _duties(mail, session_factory, tmp_path)
    now = utcnow()
    assert duties.run_once(now) == (0, 2)
    with session_factory() as s:
        rows = list(s.scalars(select(Notification)))
        assert {r.state for r in rows} == {"queued"} and {r.attempts for r in rows} == {1}
        assert all("451" in (r.last_error or "") for r in rows)
        assert all(r.next_attempt_at > now for r in rows)  # backoff
    assert duties.run_once(now + timedelta(seconds=5)) == (0, 0)  # not due yet
    auth.login("manager")
    status = auth.client.get("/notifications/").text
    assert "451" in status and 'data-state="queued">2<' in status
    smtp.refuse = False
    assert duties.run_once(now + timedelta(seconds=31)) == (2, 0)
    with session_factory() as s:
        assert {r.state for r in s.scalars(select(Notification))} == {"sent"}
    assert len(smtp.received) == 2


def test_a_server_that_is_down_is_retried_then_given_up(
    app: Flask, site: Site, auth: Auth, session_factory: Any, tmp_path: Path
) -> None:
    from tests.web.visit_helpers import free_port

    mail = _mail_app(app, free_port())  # nothing listens there
    mail = MailSection(**{**mail.__dict__, "max_attempts": 2})
    _give_addresses(session_factory, site)
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "0102030405069999"},
        page="/visitors/",
    )
    duties = _duties(mail, session_factory, tmp_path)
    now = utcnow()
    assert duties.run_once(now) == (0, 2)
    assert duties.run_once(now + timedelta(minutes=2)) == (0, 2)
    with session_factory() as s:
        rows = list(s.scalars(select(Notification)))
    assert {r.state for r in rows} == {"failed"} and {r.attempts for r in rows} == {2}
    assert all("Connection" in (r.last_error or "") for r in rows)


def test_without_a_mail_server_notifications_are_recorded_not_sent(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    _give_addresses(session_factory, site)
    auth.login("guard")
    _register(auth, site)
    vid = _only_visit(session_factory)
    resp = auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "0102030405069999"},
        page="/visitors/",
    )
    assert resp.status_code == 302
    with session_factory() as s:
        rows = list(s.scalars(select(Notification)))
        assert s.get(Visit, vid).badge_credential_id is not None
    assert len(rows) == 2 and {r.state for r in rows} == {"not_sent"}
    assert {r.last_error for r in rows} == {"not sent: no mail server"}
    assert auth.client.get("/notifications/").status_code == 403  # guards do not see the queue
    auth.login("manager")
    status = auth.client.get("/notifications/").text
    assert "メールサーバが設定されていません" in status and 'data-state="not_sent">2<' in status


@pytest.mark.parametrize("card", ["04A1B2C3D4E5F6", "04A1B2C3", "04A1B2C3D4E5F6A7B8C9"])
def test_every_iso14443a_uid_size_is_enrollable(
    app: Flask, site: Site, auth: Auth, session_factory: Any, card: str
) -> None:
    auth.login("manager")
    auth.post(
        f"/people/{site.sato}/cards",
        {"technology": "iso14443a", "card_id": card},
        page=f"/people/{site.sato}",
    )
    with session_factory() as s:
        from db.models import Credential

        assert s.scalar(select(Credential).where(Credential.card_id == card)) is not None
