"""Administration: operators and roles, areas, doors; audit log export."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from db.models import Area, AuditLog, Door, Operator, WebSession
from tests.web.conftest import Auth, Site


def test_role_change_ends_the_operators_sessions(app: Flask, site: Site, session_factory) -> None:
    guard = Auth(app.test_client())
    guard.login("guard")
    assert guard.client.get("/visitors/").status_code == 200
    admin = Auth(app.test_client())
    admin.login("administrator")
    with session_factory() as s:
        gid = s.scalar(select(Operator.id).where(Operator.username == "guard"))
        aid = s.scalar(select(Operator.id).where(Operator.username == "administrator"))
    admin.post(f"/admin/operators/{gid}", {"role": "auditor", "active": "1"}, page="/admin/")
    assert guard.client.get("/visitors/").status_code == 302  # signed out at once
    guard.login("guard")
    assert (
        guard.client.post("/visitors/", data={"csrf_token": guard.token("/visitors/")}).status_code
        == 403
    )
    # an administrator cannot lock themselves out
    admin.post(f"/admin/operators/{aid}", {"role": "guard", "active": "1"}, page="/admin/")
    with session_factory() as s:
        assert s.get(Operator, aid).role == "administrator"
        assert s.scalars(
            select(WebSession).where(WebSession.operator_id == aid, WebSession.revoked_at.is_(None))
        ).first()


def test_operator_creation_refuses_weak_passwords(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("administrator")
    auth.post(
        "/admin/operators", {"username": "g2", "role": "guard", "password": "short"}, page="/admin/"
    )
    auth.post(
        "/admin/operators",
        {"username": "g3", "role": "guard", "password": "a reasonable passphrase"},
        page="/admin/",
    )
    with session_factory() as s:
        names = set(s.scalars(select(Operator.username)))
        row = s.scalars(select(AuditLog).where(AuditLog.action == "operator.create")).one()
    assert "g2" not in names and "g3" in names
    assert row.username == "administrator" and "password" not in str(row.after)


def test_area_and_door_settings(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    auth.login("administrator")
    auth.post(
        f"/admin/areas/{site.server_room}",
        {
            "name": "サーバ室",
            "permitted_devices": "laptop, maintenance-laptop,laptop",
            "antipassback": "alert",
            "escort_policy": "named",
            "max_visitors_per_escort": "2",
        },
        page="/admin/",
    )
    auth.post(
        f"/admin/doors/{site.sr_door}",
        {
            "name": "サーバ室 扉",
            "strike_seconds": "3",
            "held_open_seconds": "0",
            "pin_timeout_seconds": "10",
            "escort_window_seconds": "10",
        },
        page="/admin/",
    )
    auth.post(
        f"/admin/doors/{site.mn_door}",
        {
            "name": "処理室 正面扉",
            "strike_seconds": "4",
            "held_open_seconds": "45",
            "pin_timeout_seconds": "15",
            "escort_window_seconds": "20",
            "pin_required": "1",
        },
        page="/admin/",
    )
    with session_factory() as s:
        area = s.get(Area, site.server_room)
        assert area.permitted_devices == ["laptop", "maintenance-laptop"]
        assert (area.antipassback, area.escort_policy, area.max_visitors_per_escort) == (
            "alert",
            "named",
            2,
        )
        assert s.get(Door, site.sr_door).strike_seconds == 5.0  # 0 s held-open refused
        mn = s.get(Door, site.mn_door)
        assert (mn.held_open_seconds, mn.escort_window_seconds, mn.pin_required) == (45, 20, True)
        row = s.scalars(select(AuditLog).where(AuditLog.action == "door.update")).one()
        assert row.before["held_open_seconds"] == 30.0 and row.after["held_open_seconds"] == 45.0


def test_audit_log_export(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("auditor")
    auth.client.get("/events/export.csv").get_data()
    resp = auth.client.get("/audit/export.csv")
    assert resp.is_streamed
    text = resp.get_data().decode("utf-8")
    assert text.startswith("\ufeffseq,")
    assert ",auditor,login," in text and ",auditor,events.export," in text
