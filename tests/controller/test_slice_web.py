"""The whole slice: a tap at a simulated door becomes a committed row that the web log shows,
through the real controller and the real web app on one database; the simulator panel's
button reaches the controller as a command."""

from __future__ import annotations

import re
import time

from flask.testing import FlaskClient

from db.engine import session_scope
from db.types import utcnow
from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD
from tests.controller.conftest import Site
from tests.web.conftest import pass_second_factor
from web import create_app
from web.accounts import create_operator
from web.totp import store_enrolment

PASSWORD = "a long demo password 1"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


SEED = "SLICESLICESLICESLICESLICESLICE22"  # test-only TOTP seed for managers


def login(site: Site, role: str) -> FlaskClient:
    app = create_app(site.cfg)
    with session_scope(site.sessions) as s:
        op = create_operator(s, role, role, PASSWORD, role.title())
        if role in ("manager", "administrator"):  # they sign in with a second factor
            store_enrolment(s, op.id, SEED, app.secret_key or b"", utcnow())
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF.search(page)
    assert token
    response = client.post(
        "/login", data={"username": role, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    response = pass_second_factor(client, response, role, SEED)
    assert response.status_code in (302, 303)
    return client


def test_tap_row_page(site: Site) -> None:
    client = login(site, "manager")
    assert client.get("/events/").status_code == 200  # logged in
    site.tap("sr-in", "yamada")
    site.tap("mn-back-in", "suzuki")
    site.tap("sr-in", card=UNKNOWN_CARD)
    page = client.get("/events/").get_data(as_text=True)
    assert "山田 太郎" in page and "入室を許可しました。" in page
    assert "鈴木 一郎" in page and "研修の受講から12か月を過ぎています。" in page
    assert UNKNOWN_CARD in page and "登録されていないカードです。" in page
    english = client.get("/events/", headers={"Accept-Language": "en"})
    assert english.status_code == 200


def test_log_requires_login(site: Site) -> None:
    client = create_app(site.cfg).test_client()
    response = client.get("/events/")
    assert response.status_code in (302, 401) and "/login" in response.headers.get(
        "Location", "/login"
    )


def test_simulator_tap_reaches_the_controller(site: Site) -> None:
    client = login(site, "guard")
    page = client.get("/simulator/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token and "sr-in" in page
    action = re.search(r'action="([^"]*tap[^"]*)"', page)
    assert action, "the simulator offers a tap form"
    response = client.post(
        action.group(1),
        data={
            "csrf_token": token.group(1),
            "reader": "sr-in",
            "card": "felica:" + DEMO_CARDS["yamada"][1],
        },
    )
    assert response.status_code in (200, 302, 303)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not site.events(reason="granted"):
        time.sleep(0.05)
    assert site.events(reason="granted")
    # the strike is released by the commit's callback, a moment after the row is visible
    _wait(lambda: site.io("sr-strike").is_active)


def test_a_guard_acknowledges_an_alarm_and_the_controller_silences_the_siren(site: Site) -> None:
    client = login(site, "guard")
    site.io("sr-contact").drive(True)  # forced open
    site.settle()
    (alarm,) = site.alarms("door_forced")
    assert site.io("siren").is_active
    page = client.get("/alarms/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token and "扉のこじ開け" in page
    response = client.post(
        f"/alarms/{alarm.id}/ack", data={"csrf_token": token.group(1), "comment": "確認済み"}
    )
    assert response.status_code in (302, 303)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and site.alarms("door_forced")[0].state != "acknowledged":
        time.sleep(0.05)
    acked = site.alarms("door_forced")[0]
    assert acked.state == "acknowledged" and acked.ack_comment == "確認済み"
    assert acked.acknowledged_by is not None
    # the command thread commits the acknowledgement, then hands "siren off" to the door
    # thread: let that queue drain before looking (a loaded machine showed the gap)
    site.settle()
    assert not site.io("siren").is_active


def test_a_guard_resets_a_wrong_record_and_the_next_exit_is_let_through(site: Site) -> None:
    client = login(site, "guard")
    assert site.tap("sr-out", "yamada")["reason"] == "antipassback"  # recorded outside, is inside
    page = client.get("/occupancy/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token and "山田 太郎" in page
    refused = site.events(reason="antipassback")[0]
    response = client.post(
        "/occupancy/forgive",
        data={
            "csrf_token": token.group(1),
            "person_id": refused.person_id,
            "area_id": refused.area_id,
        },
    )
    assert response.status_code in (302, 303)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not site.events(reason="forgiven"):
        time.sleep(0.05)
    assert site.tap("sr-out", "yamada")["reason"] == "exit"


def _wait(check: object, seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("the controller did not act in time")


def test_a_manager_unlocks_a_door_and_locks_an_area_down_from_the_console(site: Site) -> None:
    """Issue 13: remote door control written by the web as commands, carried out by the
    running controller, audited (who, which door or area, why), shown on the pages; a guard
    is refused."""
    from sqlalchemy import select

    from db.models import Area, AuditLog, Door

    with session_scope(site.sessions) as s:
        door_id = s.scalar(select(Door.id).where(Door.code == "server-room-door"))
        area_id = s.scalar(select(Area.id).where(Area.code == "server-room"))
    guard = login(site, "guard")
    page = guard.get("/doors/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token and "サーバ室 扉" in page and "unlock-form" not in page  # state only
    refused = guard.post(
        f"/doors/{door_id}/unlock", data={"csrf_token": token.group(1), "reason": "開けたい"}
    )
    assert refused.status_code == 403

    manager = login(site, "manager")
    page = manager.get("/doors/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token and "unlock-form" in page and "lockdown-form" in page
    csrf = token.group(1)
    # no reason: nothing is sent
    manager.post(f"/doors/{door_id}/unlock", data={"csrf_token": csrf, "reason": "  "})
    manager.post(f"/doors/{door_id}/unlock", data={"csrf_token": csrf, "reason": "業者の搬入"})
    _wait(lambda: site.events(reason="remote_unlock"))
    _wait(lambda: site.io("sr-strike").is_active)
    (row,) = site.events(reason="remote_unlock")
    assert row.detail and row.detail["reason"] == "業者の搬入"
    with session_scope(site.sessions) as s:
        audits = list(s.scalars(select(AuditLog).where(AuditLog.action == "door.remote_unlock")))
        assert len(audits) == 1  # the empty reason sent nothing
        assert audits[0].username == "manager" and audits[0].target_id == str(door_id)
        assert audits[0].after and audits[0].after["reason"] == "業者の搬入"
        assert row.detail["operator_id"] == audits[0].operator_id

    manager.post(
        f"/doors/areas/{area_id}/lockdown", data={"csrf_token": csrf, "reason": "不審者情報"}
    )
    _wait(lambda: site.events(reason="lockdown_started"))
    assert site.tap("sr-in", "yamada") == {"decision": "denied", "reason": "lockdown"}
    dashboard = manager.get("/dashboard").get_data(as_text=True)
    assert "lockdown-banner" in dashboard and "不審者情報" in dashboard
    doors_page = manager.get("/doors/").get_data(as_text=True)
    assert 'data-lockdown="1"' in doors_page and "lift-form" in doors_page
    assert "unlock-form" not in doors_page.split('id="area-server-room"')[1].split("</section>")[0]
    manager.post(f"/doors/areas/{area_id}/lift", data={"csrf_token": csrf, "reason": "解除"})
    _wait(lambda: site.events(reason="lockdown_lifted"))
    assert "lockdown-banner" not in manager.get("/dashboard").get_data(as_text=True)
    site.settle(0.1)
    assert site.tap("sr-in", "yamada")["decision"] == "granted"
    with session_scope(site.sessions) as s:
        actions = [
            a.action
            for a in s.scalars(
                select(AuditLog).where(AuditLog.action.like("area.lockdown%")).order_by(AuditLog.id)
            )
        ]
    assert actions == ["area.lockdown", "area.lockdown_lift"]
