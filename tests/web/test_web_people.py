"""People, cards, PINs, enrolment; alarms through commands; audit before/after."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select

from db.models import Alarm, AuditLog, Command, CommandState, Credential, Person
from db.types import utcnow
from tests.web.conftest import Auth, Site
from web.pins import pin_problem


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("12345", "pin_short"),
        ("111111", "pin_repeated"),
        ("123456", "pin_sequence"),
        ("987654", "pin_sequence"),
        ("12a456", "pin_format"),
        ("１２３４５６", "pin_format"),
        ("480213", None),
        ("1234567890", "pin_sequence"),
        ("112358", None),
    ],
)
def test_pin_rule(pin: str, problem: str | None) -> None:
    assert pin_problem(pin) == problem


def test_set_pin_is_hashed_and_never_shown(
    app: Flask, site: Site, auth: Auth, session_factory, caplog: pytest.LogCaptureFixture
) -> None:
    auth.login("manager")
    page = f"/people/{site.tanaka}"
    url = f"/people/cards/{site.tanaka_card}/pin"
    weak = auth.post(url, {"pin": "123456", "pin_again": "123456"}, page=page)
    assert weak.status_code == 302
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).pin_hash is None
    auth.post(url, {"pin": "480213", "pin_again": "480219"}, page=page)
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).pin_hash is None
    resp = auth.post(url, {"pin": "480213", "pin_again": "480213"}, page=page)
    shown = auth.client.get(resp.headers["Location"]).text
    assert "480213" not in shown and "再表示はされません" in shown
    with session_factory() as s:
        h = s.get(Credential, site.tanaka_card).pin_hash
        assert h and PasswordHasher().verify(h, "480213")
        audit_text = " ".join(str((a.before, a.after)) for a in s.scalars(select(AuditLog)))
    assert "480213" not in audit_text and "480213" not in caplog.text


def test_person_edit_is_audited_with_before_and_after(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    resp = auth.post(
        f"/people/{site.sato}/edit",
        {"name": "佐藤 次郎", "designated": "1", "employee_no": "E003"},
        page=f"/people/{site.sato}/edit",
    )
    assert resp.status_code == 302
    with session_factory() as s:
        assert s.get(Person, site.sato).designated
        row = s.scalars(select(AuditLog).where(AuditLog.action == "person.update")).one()
        assert row.before["designated"] is False and row.after["designated"] is True
        assert row.username == "manager"


def test_deactivating_a_person_stops_their_cards(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    auth.post(f"/people/{site.tanaka}/active", {"active": "0"}, page=f"/people/{site.tanaka}")
    with session_factory() as s:
        assert not s.get(Person, site.tanaka).active
        assert s.get(Credential, site.tanaka_card).state == "inactive"


def test_card_enrolment_typed_and_presented(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    page = f"/people/{site.sato}"
    bad = auth.post(
        f"/people/{site.sato}/cards", {"technology": "felica", "card_id": "XYZ"}, page=page
    )
    assert "カードIDが正しくありません" in auth.client.get(bad.headers["Location"]).text
    dup = auth.post(
        f"/people/{site.sato}/cards",
        {"technology": "felica", "card_id": "0102030405060708"},
        page=page,
    )
    assert "登録済み" in auth.client.get(dup.headers["Location"]).text
    auth.post(
        f"/people/{site.sato}/cards",
        {"technology": "iso14443a", "card_id": "de:ad:be:ef"},
        page=page,
    )
    resp = auth.post(f"/people/{site.sato}/enrol", {"reader": "mn-front-in"}, page=page)
    wait_url = resp.headers["Location"]
    assert 'data-state="waiting"' in auth.client.get(wait_url).text
    with session_factory() as s:  # the controller's part: report the presented card
        cmd = s.scalars(select(Command)).one()
        cmd.state, cmd.processed_at = CommandState.DONE, utcnow()
        cmd.result = {"technology": "felica", "card_id": "1111222233334444"}
        s.commit()
    assert "1111222233334444" in auth.client.get(wait_url).text
    auth.post(
        f"/people/{site.sato}/cards",
        {"technology": "felica", "card_id": "1111222233334444", "label": "S-9"},
        page=page,
    )
    with session_factory() as s:
        cards = {
            c.card_id
            for c in s.scalars(select(Credential).where(Credential.person_id == site.sato))
        }
    assert cards == {"DEADBEEF", "1111222233334444"}


def test_enrolment_times_out(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    app.config["NYUTAI_ENROL_TIMEOUT_SECONDS"] = 0
    auth.login("manager")
    resp = auth.post(f"/people/{site.sato}/enrol", {"reader": "sr-in"}, page=f"/people/{site.sato}")
    from datetime import timedelta

    with session_factory() as s:
        cmd = s.scalars(select(Command)).one()
        cmd.created_at = utcnow() - timedelta(seconds=10)
        s.commit()
    assert 'data-state="timeout"' in auth.client.get(resp.headers["Location"]).text


def test_alarm_ack_goes_through_a_command(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    with session_factory() as s:
        alarm = Alarm(kind="door_forced", door_id=site.sr_door, raised_at=utcnow())
        s.add(alarm)
        s.commit()
        alarm_id = alarm.id
    auth.login("guard")
    assert "扉のこじ開け" in auth.client.get("/alarms/").text
    auth.post(f"/alarms/{alarm_id}/ack", {"comment": ""}, page="/alarms/")
    with session_factory() as s:
        assert s.scalars(select(Command)).all() == []  # no comment, no acknowledgment
    auth.post(f"/alarms/{alarm_id}/ack", {"comment": "現地確認、異常なし"}, page="/alarms/")
    with session_factory() as s:
        cmd = s.scalars(select(Command)).one()
        assert cmd.kind == "ack_alarm"
        assert cmd.payload == {"alarm_id": alarm_id, "comment": "現地確認、異常なし"}
        # the web never writes alarm state itself: the controller does
        assert s.get(Alarm, alarm_id).state == "raised"
    assert "制御装置の処理待ち" in auth.client.get("/alarms/").text


def test_forgive_and_simulator_enqueue_commands(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    auth.post(
        f"/people/{site.tanaka}/forgive",
        {"area_id": str(site.server_room)},
        page=f"/people/{site.tanaka}",
    )
    auth.post(
        "/simulator/tap", {"reader": "sr-in", "card": "felica:0102030405060708"}, page="/simulator/"
    )
    auth.post("/simulator/keys", {"reader": "mn-front-in", "keys": "480213"}, page="/simulator/")
    bad = auth.post(
        "/simulator/tap", {"reader": "nowhere", "card": "felica:01"}, page="/simulator/"
    )
    assert bad.status_code == 400
    with session_factory() as s:
        cmds = [(c.kind, c.payload) for c in s.scalars(select(Command).order_by(Command.id))]
        audit_text = " ".join(str(a.after) for a in s.scalars(select(AuditLog)))
    assert cmds == [
        ("forgive", {"person_id": site.tanaka, "area_id": site.server_room}),
        ("tap", {"reader": "sr-in", "card": "0102030405060708", "technology": "felica"}),
        ("keys", {"reader": "mn-front-in", "keys": "480213#"}),
    ]
    assert "480213" not in audit_text  # keys may be a PIN: never in the audit log


def test_authorization_list_highlights_training(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    html = auth.client.get(f"/authorizations/?area={site.server_room}").text
    rows = {r.split('data-person="')[1].split('"')[0]: r for r in html.split("<tr")[2:]}
    assert "training current" in rows["田中 一郎"]
    assert "training expired" in rows["鈴木 花子"]
    assert "training missing" in rows["佐藤 次郎"]
    # approve / revoke flow with audit
    auth.post(
        "/authorizations/new",
        {"person_id": site.sato, "area_id": site.server_room, "valid_until": "2027-03-31"},
        page="/authorizations/",
    )
    from db.models import Authorization

    with session_factory() as s:
        new = s.scalars(select(Authorization).order_by(Authorization.id.desc())).first()
        assert new.state == "pending"
        assert new.valid_until.isoformat() == "2027-03-31T14:59:59+00:00"  # end of day JST
    # four eyes: the requesting manager cannot approve; a second manager can
    auth.post(f"/authorizations/{new.id}/approve", {}, page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, new.id).state == "pending"
    second = Auth(app.test_client())
    second.login("manager2")
    second.post(f"/authorizations/{new.id}/approve", {}, page="/authorizations/")
    with session_factory() as s:
        a = s.get(Authorization, new.id)
        assert a.state == "approved" and a.approved_by is not None


def test_integrity_verification_finds_an_altered_row(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    from tests.web.test_web_events import add_events

    add_events(session_factory, site, 10)
    auth.login("auditor")
    ok = auth.post("/audit/verify", {}, page="/audit/verify").text
    assert ok.count("改ざんなし") == 2
    with session_factory() as s:
        from sqlalchemy import update

        from db.models import Event

        s.execute(update(Event).where(Event.seq == 4).values(reason="granted_escorted"))
        s.commit()
    broken = auth.post("/audit/verify", {}, page="/audit/verify").text
    assert "改ざんの疑い" in broken and "最初の不整合行: 4" in broken
