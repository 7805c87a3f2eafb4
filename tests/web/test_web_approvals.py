"""Four eyes in the console: the requester never decides; a second person with the right role
approves and the operation takes effect; everything audited with both people."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from db.models import (
    ApprovalRequest,
    AuditLog,
    Authorization,
    Credential,
    CredentialState,
    Operator,
)
from tests.web.conftest import Auth, Site


def _signed_in(app: Flask, username: str) -> Auth:
    a = Auth(app.test_client())
    resp = a.login(username)
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"
    return a


def _requests(session_factory: Any) -> list[ApprovalRequest]:
    with session_factory() as s:
        return list(s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id)))


def test_requester_cannot_approve_their_own_authorization(
    app: Flask, site: Site, session_factory: Any
) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    first.post(
        "/authorizations/new",
        {"person_id": site.sato, "area_id": site.mynumber_room},
        page="/authorizations/",
    )
    with session_factory() as s:
        auth = s.scalars(select(Authorization).order_by(Authorization.id.desc())).first()
    [req] = _requests(session_factory)
    assert req.kind == "authorization.approve" and req.state == "pending"
    # the requester: refused on both routes
    first.post(f"/authorizations/{auth.id}/approve", page="/authorizations/")
    first.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(Authorization, auth.id).state == "pending"
    assert "承認待ち" in first.client.get("/authorizations/").text  # shown as waiting
    # a guard or an auditor cannot decide at all
    assert (
        _signed_in(app, "auditor")
        .post(f"/approvals/{req.id}/approve", page="/approvals/")
        .status_code
        == 403
    )
    # the second manager approves: it takes effect, with both people on record
    second.post(f"/authorizations/{auth.id}/approve", page="/authorizations/")
    with session_factory() as s:
        a = s.get(Authorization, auth.id)
        mgr2 = s.scalar(select(Operator.id).where(Operator.username == "manager2"))
        assert a.state == "approved" and a.approved_by == mgr2
        row = s.scalars(select(AuditLog).where(AuditLog.action == "authorization.approve")).one()
        assert row.username == "manager2" and row.before["state"] == "pending"
        assert row.after["requested_by"] == "manager" and row.after["approved_by"] == "manager2"
        actions = [r.action for r in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    steps = [a for a in actions if a.startswith(("authorization.", "approval."))]
    assert steps == [
        "authorization.create",
        "approval.request",
        "approval.approve",
        "authorization.approve",
        "approval.done",
    ]
    assert _requests(session_factory)[0].state == "done"


def test_an_edit_after_the_request_voids_it(app: Flask, site: Site, session_factory: Any) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    first.post(
        "/authorizations/new",
        {"person_id": site.sato, "area_id": site.mynumber_room},
        page="/authorizations/",
    )
    with session_factory() as s:
        auth_id = s.scalars(select(Authorization.id).order_by(Authorization.id.desc())).first()
    # the second manager widens it: their edit is the new request, which they cannot approve
    second.post(
        f"/authorizations/{auth_id}/edit",
        {"valid_until": "2030-03-31", "schedule": ""},
        page="/authorizations/",
    )
    reqs = _requests(session_factory)
    assert [r.state for r in reqs] == ["cancelled", "pending"]
    second.post(f"/authorizations/{auth_id}/approve", page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, auth_id).state == "pending"
    first.post(f"/authorizations/{auth_id}/approve", page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, auth_id).state == "approved"


def test_revoke_needs_a_reason_and_reapproval_is_a_new_request(
    app: Flask, site: Site, session_factory: Any
) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    url = f"/authorizations/{site.auth_tanaka}"
    first.post(f"{url}/revoke", {"reason": "異動"}, page="/authorizations/")  # not confirmed
    first.post(f"{url}/revoke", {"confirm": "1"}, page="/authorizations/")  # no reason
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).state == "approved"
    first.post(f"{url}/revoke", {"confirm": "1", "reason": "異動"}, page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).state == "revoked"
        row = s.scalars(select(AuditLog).where(AuditLog.action == "authorization.revoke")).one()
        assert row.after["reason"] == "異動" and row.before["state"] == "approved"
    # "Approve" on a revoked authorization only asks; it stays revoked until someone else agrees
    first.post(f"{url}/approve", page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).state == "revoked"
    [req] = _requests(session_factory)
    assert req.state == "pending"
    first.post(f"{url}/approve", page="/authorizations/")  # still the requester: refused
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).state == "revoked"
    second.post(f"{url}/approve", page="/authorizations/")
    with session_factory() as s:
        assert s.get(Authorization, site.auth_tanaka).state == "approved"


def test_unlocking_a_locked_card_needs_a_second_manager(
    app: Flask, site: Site, session_factory: Any
) -> None:
    with session_factory() as s:
        card = s.get(Credential, site.tanaka_card)
        card.state, card.failed_pin_count = CredentialState.LOCKED, 5
        s.commit()
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    page = f"/people/{site.tanaka}"
    first.post(f"/people/cards/{site.tanaka_card}/state", {"state": "active"}, page=page)
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).state == "locked"
    [req] = _requests(session_factory)
    first.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).state == "locked"
    second.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        card = s.get(Credential, site.tanaka_card)
        assert card.state == "active" and card.failed_pin_count == 0
        row = s.scalars(select(AuditLog).where(AuditLog.action == "credential.unlock")).one()
        assert row.after["requested_by"] == "manager" and row.after["approved_by"] == "manager2"


def test_taking_a_card_out_of_use_needs_a_reason(
    app: Flask, site: Site, session_factory: Any
) -> None:
    m = _signed_in(app, "manager")
    page = f"/people/{site.tanaka}"
    m.post(f"/people/cards/{site.tanaka_card}/state", {"state": "lost"}, page=page)
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).state == "active"
    m.post(
        f"/people/cards/{site.tanaka_card}/state", {"state": "lost", "reason": "紛失届"}, page=page
    )
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).state == "lost"
        row = s.scalars(select(AuditLog).where(AuditLog.action == "credential.state")).one()
        assert row.after["reason"] == "紛失届"


def test_a_new_administrator_waits_for_a_second_person(
    app: Flask, site: Site, session_factory: Any
) -> None:
    admin = _signed_in(app, "administrator")
    admin.post(
        "/admin/operators",
        {"username": "adm2", "role": "administrator", "password": "a long admin passphrase"},
        page="/admin/",
    )
    with session_factory() as s:
        new = s.scalars(select(Operator).where(Operator.username == "adm2")).one()
        assert new.role == "administrator" and new.active is False
    [req] = _requests(session_factory)
    admin.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(Operator, new.id).active is False
    # promoting a guard is the same: asked, not done
    with session_factory() as s:
        gid = s.scalar(select(Operator.id).where(Operator.username == "guard"))
    admin.post(f"/admin/operators/{gid}", {"role": "administrator", "active": "1"}, page="/admin/")
    with session_factory() as s:
        assert s.get(Operator, gid).role == "guard"
    _signed_in(app, "manager").post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(Operator, new.id).active is True
        row = s.scalars(select(AuditLog).where(AuditLog.action == "operator.administrator")).one()
        assert row.before["active"] is False and row.after["active"] is True
        assert (
            row.after["requested_by"] == "administrator" and row.after["approved_by"] == "manager"
        )
    # the new administrator must enrol a second factor at the first sign-in
    resp = Auth(app.test_client()).login("adm2", "a long admin passphrase")
    assert resp.headers["Location"].startswith("/mfa/enrol")


def test_a_purge_is_asked_and_approved_in_the_console_for_the_command_line(
    app: Flask, site: Site, session_factory: Any
) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    form = {"kind": "retention.purge", "log": "events", "before": "2020-01-02"}
    first.post("/approvals/new", form, page="/approvals/")  # no reason: refused
    assert _requests(session_factory) == []
    first.post("/approvals/new", {**form, "reason": "契約終了"}, page="/approvals/")
    [req] = _requests(session_factory)
    assert req.params == {"log": "events", "before": "2020-01-02"}
    second.post(f"/approvals/{req.id}/reject", page="/approvals/")  # a rejection needs a reason
    assert _requests(session_factory)[0].state == "pending"
    second.post(f"/approvals/{req.id}/approve", page="/approvals/")
    [req] = _requests(session_factory)
    assert req.state == "approved"  # waits for `nyutai purge --approval N`
    assert f"--approval {req.id}" in second.client.get("/approvals/").text


def test_requester_may_withdraw(app: Flask, site: Site, session_factory: Any) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    form = {"kind": "review.decide", "person_id": str(site.sato), "decision": "revoke"}
    first.post("/approvals/new", {**form, "reason": "r"}, page="/approvals/")
    [req] = _requests(session_factory)
    second.post(f"/approvals/{req.id}/cancel", page="/approvals/")  # not theirs
    assert _requests(session_factory)[0].state == "pending"
    first.post(f"/approvals/{req.id}/cancel", page="/approvals/")
    assert _requests(session_factory)[0].state == "cancelled"


def _door_terms(session_factory: Any, site: Site) -> tuple[Any, ...]:
    """What the door controller loads for Tanaka in the My Number room (controller.facts)."""
    from controller.facts import load_person_facts

    with session_factory() as s:
        _person, auths, _visit = load_person_facts(s, site.tanaka, site.mynumber_room)
    return tuple((a.valid_until, a.schedule) for a in auths)


def test_editing_an_approved_authorization_needs_a_second_manager(
    app: Flask, site: Site, session_factory: Any
) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    with session_factory() as s:
        [auth_id] = s.scalars(
            select(Authorization.id).where(
                Authorization.person_id == site.tanaka,
                Authorization.area_id == site.mynumber_room,
            )
        ).all()
    door_before = _door_terms(session_factory, site)
    assert door_before == ((None, None),)
    # a manager narrows the hours and sets an end: asked, not done
    form = {"valid_until": "2030-03-31", "schedule": "mon-fri 08:00-20:00", "reason": "契約変更"}
    first.post(f"/authorizations/{auth_id}/edit", form, page="/authorizations/")
    [req] = _requests(session_factory)
    assert req.kind == "authorization.change" and req.state == "pending"
    assert req.params["before"]["schedule"] is None
    assert req.params["after"]["schedule"] == {d: [["08:00", "20:00"]] for d in _WEEKDAYS}
    assert _door_terms(session_factory, site) == door_before  # the door: approved terms only
    assert "change-waiting" in first.client.get("/authorizations/").text
    # the requester cannot approve it; an auditor cannot decide at all
    first.post(f"/approvals/{req.id}/approve", page="/approvals/")
    assert _signed_in(app, "auditor").post(f"/approvals/{req.id}/approve").status_code == 403
    assert _door_terms(session_factory, site) == door_before
    # the second manager approves: now the doors use the new terms, audited before/after
    second.post(f"/approvals/{req.id}/approve", page="/approvals/")
    [(until, schedule)] = _door_terms(session_factory, site)
    assert until is not None and until.year == 2030 and schedule == req.params["after"]["schedule"]
    with session_factory() as s:
        assert s.get(Authorization, auth_id).state == "approved"
        asked = s.scalars(
            select(AuditLog).where(AuditLog.action == "authorization.change_request")
        ).one()
        assert asked.username == "manager" and asked.before["schedule"] is None
        done = s.scalars(select(AuditLog).where(AuditLog.action == "authorization.edit")).one()
        assert done.before["schedule"] is None and done.after["schedule"] == schedule
        assert done.after["requested_by"] == "manager" and done.after["approved_by"] == "manager2"
    assert _requests(session_factory)[0].state == "done"


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def test_a_change_request_is_void_when_the_authorization_moved_on(
    app: Flask, site: Site, session_factory: Any
) -> None:
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    url = f"/authorizations/{site.auth_tanaka}"
    first.post(f"{url}/edit", {"valid_until": "2030-03-31"}, page="/authorizations/")
    # an edit with nothing different asks nothing
    second.post(f"{url}/edit", {"valid_until": ""}, page="/authorizations/")
    [req] = _requests(session_factory)
    # revoking the authorization withdraws the open change with it
    second.post(f"{url}/revoke", {"confirm": "1", "reason": "退職"}, page="/authorizations/")
    assert _requests(session_factory)[0].state == "cancelled"
    second.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        auth = s.get(Authorization, site.auth_tanaka)
        assert auth.state == "revoked" and auth.valid_until is None


def test_a_locked_card_is_not_unlocked_by_one_manager_by_way_of_another_state(
    app: Flask, site: Site, session_factory: Any
) -> None:
    with session_factory() as s:
        card = s.get(Credential, site.tanaka_card)
        card.state, card.failed_pin_count = CredentialState.LOCKED, 5
        s.commit()
    m = _signed_in(app, "manager")
    page = f"/people/{site.tanaka}"
    url = f"/people/cards/{site.tanaka_card}/state"
    # "lost" (with a reason), then "active": would be an unlock by one person
    m.post(url, {"state": "lost", "reason": "紛失届"}, page=page)
    m.post(url, {"state": "active"}, page=page)
    with session_factory() as s:
        assert s.get(Credential, site.tanaka_card).state == "locked"
    [req] = _requests(session_factory)
    assert req.kind == "credential.unlock"  # the second step was only a request


def test_a_new_manager_waits_for_a_second_person(
    app: Flask, site: Site, session_factory: Any
) -> None:
    """Managers decide four-eyes steps: were making one a step of one administrator, that
    administrator could make the second person they need."""
    admin = _signed_in(app, "administrator")
    admin.post(
        "/admin/operators",
        {"username": "mgr3", "role": "manager", "password": "a long manager passphrase"},
        page="/admin/",
    )
    with session_factory() as s:
        new = s.scalars(select(Operator).where(Operator.username == "mgr3")).one()
        assert new.role == "manager" and new.active is False
    [req] = _requests(session_factory)
    assert req.kind == "operator.manager"
    admin.post(f"/approvals/{req.id}/approve", page="/approvals/")  # own request: refused
    with session_factory() as s:
        assert s.get(Operator, new.id).active is False
        gid = s.scalar(select(Operator.id).where(Operator.username == "guard"))
    # promoting a guard to manager is asked, not done
    admin.post(f"/admin/operators/{gid}", {"role": "manager", "active": "1"}, page="/admin/")
    with session_factory() as s:
        assert s.get(Operator, gid).role == "guard"
    _signed_in(app, "manager").post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(Operator, new.id).active is True
        row = s.scalars(select(AuditLog).where(AuditLog.action == "operator.manager")).one()
        assert (
            row.after["requested_by"] == "administrator" and row.after["approved_by"] == "manager"
        )
    # other roles stay one administrator's step
    admin.post(f"/admin/operators/{gid}", {"role": "auditor", "active": "1"}, page="/admin/")
    with session_factory() as s:
        assert s.get(Operator, gid).role == "auditor"


def test_the_purge_form_offers_every_chain_and_the_request_names_it(
    app: Flask, site: Site, session_factory: Any
) -> None:
    from db.controllers import register
    from db.types import utcnow

    with session_factory() as s:
        register(s, "bldg-a", [], utcnow())
        register(s, "bldg-b", [], utcnow())
        s.commit()
    first, second = _signed_in(app, "manager"), _signed_in(app, "manager2")
    page = first.client.get("/approvals/").text
    form_html = page.split('id="purge-request"')[1].split("</form>")[0]
    options = [o.split('"')[0] for o in form_html.split('<option value="')[1:]]
    assert options == ["events", "events@bldg-a", "events@bldg-b", "audit"]
    assert "bldg-b" in form_html.split('value="events@bldg-b">')[1].split("</option>")[0]
    # a chain no controller has: refused, nothing asked
    bad = {"kind": "retention.purge", "log": "events@nobody", "before": "2020-01-02"}
    first.post("/approvals/new", {**bad, "reason": "契約終了"}, page="/approvals/")
    assert _requests(session_factory) == []
    form = {"kind": "retention.purge", "log": "events@bldg-b", "before": "2020-01-02"}
    first.post("/approvals/new", {**form, "reason": "契約終了"}, page="/approvals/")
    [req] = _requests(session_factory)
    assert req.params == {"log": "events@bldg-b", "before": "2020-01-02"}
    second.post(f"/approvals/{req.id}/approve", page="/approvals/")
    assert _requests(session_factory)[0].state == "approved"
