"""Typed weekly schedules for authorizations."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from db.models import ApprovalRequest, AuditLog, Authorization
from tests.web.conftest import Auth, Site
from web.schedule import ScheduleError, format_schedule, parse_schedule


def test_parse_and_format() -> None:
    s = parse_schedule("Mon-Fri 08:00-12:00, 13:00-20:00; sat 09:00-12:00")
    assert s == {
        **{
            d: [["08:00", "12:00"], ["13:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
        },
        "sat": [["09:00", "12:00"]],
    }
    assert parse_schedule(format_schedule(s)) == s
    assert parse_schedule("月-金 08:00-20:00; 土 09:00-12:00") == parse_schedule(
        "mon-fri 08:00-20:00; sat 09:00-12:00"
    )
    assert parse_schedule("  ") is None


@pytest.mark.parametrize(
    "bad",
    [
        "mon 20:00-20:00",
        "xyz 08:00-09:00",
        "mon 25:00-26:00",
        "mon 8-9",
        "mon",
    ],
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


def test_edit_schedule_in_the_console(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    auth.login("manager")
    url = f"/authorizations/{site.auth_tanaka}/edit"
    bad = auth.post(url, {"schedule": "mon 20:00-20:00"}, page="/authorizations/")
    assert "時間帯の指定を読み取れません" in auth.client.get(bad.headers["Location"]).text
    auth.post(url, {"schedule": "月-金 08:00-20:00"}, page="/authorizations/")
    # the authorization is approved: the edit is a change request a second manager approves
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).schedule is None
        req_id = s.scalars(select(ApprovalRequest.id)).one()
    second = Auth(app.test_client())
    second.login("manager2")
    second.post(f"/approvals/{req_id}/approve", page="/approvals/")
    with session_factory() as s:
        auth_row = s.get(Authorization, site.auth_tanaka)
        assert auth_row.schedule == {
            d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
        }
        row = s.scalars(select(AuditLog).where(AuditLog.action == "authorization.edit")).one()
        assert row.before["schedule"] is None and row.after["schedule"]["mon"] == [
            ["08:00", "20:00"]
        ]
    page = auth.client.get(f"/authorizations/?person={site.tanaka}").text
    assert "月 08:00-20:00" in page


def test_authorization_ending_before_its_start_is_refused(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("manager")
    data = {
        "person_id": site.tanaka,
        "area_id": site.server_room,
        "valid_from": "2026-05-01",
        "valid_until": "2026-04-01",
    }
    resp = auth.post("/authorizations/new", data, page="/authorizations/")
    assert "有効期間の終わりが始まりより前です" in auth.client.get(resp.headers["Location"]).text
    with session_factory() as s:
        assert (
            s.scalars(select(Authorization).where(Authorization.valid_from.is_not(None))).all()
            == []
        )
    ok = auth.post(
        "/authorizations/new",
        {**data, "valid_until": "2026-05-31", "schedule": "毎日 18:00-08:00"},
        page="/authorizations/",
    )
    assert ok.status_code == 302
    with session_factory() as s:
        row = s.scalars(select(Authorization).where(Authorization.valid_from.is_not(None))).one()
        assert row.schedule["sun"] == [["18:00", "08:00"]] and row.state == "pending"
        # a row written before the rule (end before start) cannot be approved
        row.valid_until = row.valid_from.replace(day=1)
        s.commit()
        bad_id = row.id
    auth.post(f"/authorizations/{bad_id}/approve", {}, page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, bad_id).state == "pending"


def test_the_form_says_how_to_write_a_schedule(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("manager")
    page = auth.client.get("/authorizations/").text
    assert 'id="schedule-help"' in page and "18:00-08:00" in page and "毎日" in page
