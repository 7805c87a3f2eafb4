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
            "offline_fail_secure": "1",
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
        assert area.offline == "fail_secure"  # denies everyone while the database is away
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
    assert ",auditor,login,ログイン,operator,操作者," in text  # codes and words (issue 13)


def test_own_password_change(app: Flask, site: Site, session_factory) -> None:
    from tests.web.conftest import PASSWORD

    other = Auth(app.test_client())
    other.login("guard")  # the same operator on another PC
    me = Auth(app.test_client())
    me.login("guard")
    new = "a brand new passphrase"
    me.post("/account", {"current": "wrong", "new": new, "again": new}, page="/account")
    me.post("/account", {"current": PASSWORD, "new": new, "again": new + "x"}, page="/account")
    me.post("/account", {"current": PASSWORD, "new": "short", "again": "short"}, page="/account")
    assert Auth(app.test_client()).login("guard", new).status_code == 401
    resp = me.post("/account", {"current": PASSWORD, "new": new, "again": new}, page="/account")
    assert "パスワードを変更しました" in me.client.get(resp.headers["Location"]).text
    assert me.client.get("/dashboard").status_code == 200  # this session stays
    assert other.client.get("/dashboard").status_code == 302  # the other one ended
    assert Auth(app.test_client()).login("guard", new).status_code == 302
    with session_factory() as s:
        actions = [a.action for a in s.scalars(select(AuditLog))]
        texts = " ".join(str((a.before, a.after)) for a in s.scalars(select(AuditLog)))
    assert "password_change_failed" in actions and "password_change" in actions
    assert new not in texts and PASSWORD not in texts


def test_admin_password_reset_and_settings(app: Flask, site: Site, session_factory) -> None:
    guard = Auth(app.test_client())
    guard.login("guard")
    admin = Auth(app.test_client())
    admin.login("administrator")
    with session_factory() as s:
        gid = s.scalar(select(Operator.id).where(Operator.username == "guard"))
    admin.post(f"/admin/operators/{gid}/password", {"password": "short"}, page="/admin/")
    assert guard.client.get("/dashboard").status_code == 200
    admin.post(
        f"/admin/operators/{gid}/password", {"password": "reset by the admin 1"}, page="/admin/"
    )
    assert guard.client.get("/dashboard").status_code == 302
    assert Auth(app.test_client()).login("guard", "reset by the admin 1").status_code == 302
    admin.post("/admin/settings", {"key": "Bad Key", "value": "1"}, page="/admin/")
    admin.post("/admin/settings", {"key": "contract_end", "value": "not json"}, page="/admin/")
    admin.post("/admin/settings", {"key": "contract_end", "value": '"2027-03-31"'}, page="/admin/")
    admin.post("/admin/settings", {"key": "contract_end", "value": '"2028-03-31"'}, page="/admin/")
    from db.models import ApprovalRequest, SiteSetting

    with session_factory() as s:  # four eyes: asked, not yet changed
        assert list(s.scalars(select(SiteSetting))) == []
        asked = [r.id for r in s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id))]
    manager = Auth(app.test_client())
    manager.login("manager")
    for request_id in asked:
        manager.post(f"/approvals/{request_id}/approve", page="/approvals/")
    with session_factory() as s:
        assert [(r.key, r.value) for r in s.scalars(select(SiteSetting))] == [
            ("contract_end", "2028-03-31")
        ]
        row = s.scalars(
            select(AuditLog).where(AuditLog.action == "setting.update").order_by(AuditLog.id.desc())
        ).first()
        assert row.before == {"value": "2027-03-31"} and row.after == {
            "value": "2028-03-31",
            "approval": asked[1],
            "requested_by": "administrator",
            "approved_by": "manager",
        }
        reset = s.scalars(
            select(AuditLog).where(AuditLog.action == "operator.password_reset")
        ).one()
        assert "reset by the admin" not in str(reset.after)
