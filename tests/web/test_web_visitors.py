"""The reception desk: registration rules (purpose, escort, devices), badges, sign-out.

Where the controller would answer an enrolment command, the test plays its part by
writing the command's result row (the lead's end-to-end tests use the real controller).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import func, select

from db.models import (
    AuditLog,
    Command,
    CommandState,
    Credential,
    Person,
    PersonKind,
    Visit,
)
from db.types import utcnow
from tests.web.conftest import Auth, Site

TOKYO = ZoneInfo("Asia/Tokyo")


def _window(days: int = 0, hours: float = 3) -> tuple[str, str]:
    """A visit window starting now (``days`` later), in the form's local format."""
    start = (datetime.now(TOKYO) + timedelta(days=days)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    return start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")


def _form(site: Site, **over: str) -> dict[str, str]:
    start, end = _window()
    data = {
        "name": "山田 太郎",
        "organization": "保守サービス株式会社",
        "id_checked": "1",
        "id_kind": "drivers_license",
        "purpose": "サーバ保守",
        "area_id": str(site.server_room),
        "escort_id": str(site.tanaka),
        "host_id": str(site.sato),
        "device_kind_1": "maintenance-laptop",
        "device_serial_1": "SN-123",
        "expected_from": start,
        "expected_until": end,
    }
    data.update(over)
    return data


def _counts(factory) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with factory() as s:
        return (
            s.scalar(select(func.count(Visit.id))) or 0,
            s.scalar(select(func.count(Person.id)).where(Person.kind == PersonKind.VISITOR)) or 0,
        )


def test_only_eligible_escorts_are_offered(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("guard")
    html = auth.client.get("/visitors/").text
    escort_select = html.split('id="visit-escort"')[1].split("</select>")[0]
    assert "田中 一郎" in escort_select  # designated, trained, authorized
    assert "鈴木 花子" not in escort_select  # training older than 12 months
    assert "佐藤 次郎" not in escort_select  # not designated


def test_escorts_of_the_chosen_area_only_are_rendered(app: Flask, site: Site, auth: Auth) -> None:
    """The page lists the escorts of one area (the chosen one, else the first by code): the
    others come from escorts.json when the guard changes the area."""
    auth.login("guard")

    def escort_areas(html: str) -> set[str]:
        select = html.split('id="visit-escort"')[1].split("</select>")[0]
        return set(re.findall(r'data-area="(\d+)"', select))

    first = auth.client.get("/visitors/").text
    assert escort_areas(first) == {str(site.mynumber_room)}  # "mynumber-room" < "server-room"
    refused = auth.post(
        "/visitors/",
        _form(site, area_id=str(site.server_room), purpose=""),
        page="/visitors/",
    )
    assert refused.status_code == 400
    assert escort_areas(refused.text) == {str(site.server_room)}
    chosen = refused.text.split('id="visit-escort"')[1].split("</select>")[0]
    assert f'value="{site.tanaka}" data-area="{site.server_room}" selected' in chosen


def test_register_refusals_save_nothing(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    before = _counts(session_factory)
    no_purpose = auth.post("/visitors/", _form(site, purpose=""), page="/visitors/")
    assert no_purpose.status_code == 400 and "用件は必須" in no_purpose.text
    usb = auth.post("/visitors/", _form(site, device_kind_2="usb-memory"), page="/visitors/")
    assert usb.status_code == 400
    assert "usb-memory" in usb.text and "許可されていない機器" in usb.text
    bad_escort = auth.post("/visitors/", _form(site, escort_id=str(site.suzuki)), page="/visitors/")
    assert bad_escort.status_code == 400 and "立会者になれません" in bad_escort.text
    laptop_mn = auth.post(
        "/visitors/", _form(site, area_id=str(site.mynumber_room)), page="/visitors/"
    )
    assert laptop_mn.status_code == 400  # the My Number room permits no devices at all
    no_host = auth.post("/visitors/", _form(site, host_id="9999"), page="/visitors/")
    assert no_host.status_code == 400
    assert _counts(session_factory) == before
    # the refused form keeps what the guard typed
    assert "保守サービス株式会社" in usb.text


def test_register_issue_badge_and_sign_out(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    form = _form(site)
    resp = auth.post("/visitors/", form, page="/visitors/")
    assert resp.status_code == 302
    local_start = datetime.strptime(form["expected_from"], "%Y-%m-%dT%H:%M").replace(tzinfo=TOKYO)
    with session_factory() as s:
        visit = s.scalars(select(Visit)).one()
        assert visit.purpose == "サーバ保守" and visit.escort_id == site.tanaka
        assert visit.declared_devices == [{"kind": "maintenance-laptop", "serial": "SN-123"}]
        assert visit.id_checked and visit.id_kind == "drivers_license"
        assert visit.expected_from == local_start.astimezone(UTC)  # JST typed, UTC stored
        vid = visit.id
    page = auth.client.get("/visitors/").text
    assert "山田 太郎" in page and "保守用ノートPC" in page
    # badge by typing its id
    resp = auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "01 02 03 04 05 06 07 99", "label": "V-7"},
        page="/visitors/",
    )
    assert resp.status_code == 302
    with session_factory() as s:
        visit = s.get(Visit, vid)
        badge = visit.badge
        assert badge.temporary and badge.card_id == "0102030405060799" and badge.state == "active"
        assert badge.valid_until == visit.expected_until and visit.signed_in_at is not None
    # sign-out insists on the devices leaving
    refused = auth.post(f"/visitors/{vid}/signout", {}, page="/visitors/")
    assert refused.status_code == 302
    with session_factory() as s:
        assert s.get(Visit, vid).signed_out_at is None
    auth.post(f"/visitors/{vid}/signout", {"devices_confirmed": "1"}, page="/visitors/")
    with session_factory() as s:
        visit = s.get(Visit, vid)
        assert visit.signed_out_at is not None and visit.devices_confirmed_out
        assert visit.badge.state == "returned"
        actions = [a.action for a in s.scalars(select(AuditLog))]
    assert {"visit.create", "visit.badge_issued", "visit.sign_out"} <= set(actions)
    # the returned badge can go to the next visitor
    auth.post("/visitors/", _form(site, name="次の 来訪者"), page="/visitors/")
    with session_factory() as s:
        vid2 = max(v.id for v in s.scalars(select(Visit)))
    resp = auth.post(
        f"/visitors/{vid2}/badge",
        {"technology": "felica", "card_id": "0102030405060799"},
        page="/visitors/",
    )
    with session_factory() as s:
        assert s.get(Visit, vid2).badge_credential_id == s.get(Visit, vid).badge_credential_id
    # a staff card cannot be handed out as a visitor badge
    auth.post("/visitors/", _form(site, name="三人目"), page="/visitors/")
    with session_factory() as s:
        vid3 = max(v.id for v in s.scalars(select(Visit)))
    auth.post(
        f"/visitors/{vid3}/badge",
        {"technology": "felica", "card_id": "0102030405060708"},
        page="/visitors/",
    )
    with session_factory() as s:
        assert s.get(Visit, vid3).badge_credential_id is None
        assert s.get(Credential, site.tanaka_card).person_id == site.tanaka


def test_badge_by_presentation(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    auth.login("guard")
    auth.post("/visitors/", _form(site, device_kind_1=""), page="/visitors/")
    with session_factory() as s:
        vid = s.scalars(select(Visit)).one().id
    resp = auth.post(f"/visitors/{vid}/badge/present", {"reader": "sr-in"}, page="/visitors/")
    wait_url = resp.headers["Location"]
    waiting = auth.client.get(wait_url).text
    assert 'data-state="waiting"' in waiting and 'http-equiv="refresh"' in waiting
    # the controller's side: the next card at sr-in is read and reported
    with session_factory() as s:
        cmd = s.scalars(select(Command)).one()
        assert cmd.kind == "enrol" and cmd.payload["reader"] == "sr-in"
        cmd.state, cmd.processed_at = CommandState.DONE, utcnow()
        cmd.result = {"technology": "felica", "card_id": "0A0B0C0D0E0F1011"}
        s.commit()
    done = auth.client.get(wait_url).text
    assert 'data-state="done"' in done and "0A0B0C0D0E0F1011" in done
    auth.post(
        f"/visitors/{vid}/badge",
        {"technology": "felica", "card_id": "0A0B0C0D0E0F1011"},
        page="/visitors/",
    )
    with session_factory() as s:
        assert s.get(Visit, vid).badge.card_id == "0A0B0C0D0E0F1011"


def test_repeat_visitor_is_found_and_reused(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    auth.post("/visitors/", _form(site, device_kind_1=""), page="/visitors/")
    with session_factory() as s:
        pid = s.scalars(select(Visit)).one().visitor_id
    found = auth.client.get("/visitors/?q=保守サービス").text
    assert f"from_person={pid}" in found
    prefilled = auth.client.get(f"/visitors/?from_person={pid}").text
    assert 'value="山田 太郎"' in prefilled and f'name="visitor_id" value="{pid}"' in prefilled
    auth.post("/visitors/", _form(site, device_kind_1="", visitor_id=str(pid)), page="/visitors/")
    with session_factory() as s:
        assert [v.visitor_id for v in s.scalars(select(Visit))] == [pid, pid]
