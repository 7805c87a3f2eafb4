"""Role x route matrix: every route, every role and anonymous, the expected status.

The expected table is written out here by hand from the issue (not derived from
web.roles), so a wrong entry in the permission table makes this test fail.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from db.models import Operator
from tests.web.conftest import Auth, Site

ALL = {"administrator", "manager", "guard", "auditor"}
GM = {"guard", "manager"}
MA = {"manager", "auditor"}
PUBLIC = "public"

# endpoint -> (method, roles allowed); PUBLIC = no login needed
EXPECTED: dict[str, tuple[str, set[str] | str]] = {
    "dashboard.root": ("GET", PUBLIC),
    "dashboard.health": ("GET", PUBLIC),
    "auth.login": ("GET", PUBLIC),
    "auth.language": ("POST", PUBLIC),
    "auth.logout": ("POST", ALL),
    "auth.account": ("GET", ALL),
    "dashboard.index": ("GET", ALL),
    "dashboard.live": ("GET", ALL),
    "alarms.index": ("GET", ALL),
    "alarms.acknowledge": ("POST", GM),
    "alarms.clear": ("POST", GM),
    "visitors.index": ("GET", {"guard", "manager", "auditor"}),
    "visitors.register": ("POST", GM),
    "visitors.issue_badge": ("POST", GM),
    "visitors.badge_enrol": ("POST", GM),
    "visitors.badge_wait": ("GET", GM),
    "visitors.sign_out": ("POST", GM),
    "visitors.escorts_json": ("GET", GM),
    "visitors.hosts_json": ("GET", GM),
    "visitors.photo": ("POST", GM),
    "visitors.photo_file": ("GET", {"guard", "manager", "auditor"}),
    "visitors.badge_pdf": ("GET", GM),
    "notifications.index": ("GET", {"manager", "administrator"}),
    "simulator.index": ("GET", {"guard", "manager", "administrator"}),
    "simulator.tap": ("POST", {"guard", "manager", "administrator"}),
    "simulator.keys": ("POST", {"guard", "manager", "administrator"}),
    "simulator.contact": ("POST", {"guard", "manager", "administrator"}),
    "simulator.rex": ("POST", {"guard", "manager", "administrator"}),
    "simulator.tamper": ("POST", {"guard", "manager", "administrator"}),
    # issue 13: remote door control for managers and administrators, never guards
    "doors.index": ("GET", ALL),
    "doors.unlock": ("POST", {"manager", "administrator"}),
    "doors.lockdown": ("POST", {"manager", "administrator"}),
    "doors.lift": ("POST", {"manager", "administrator"}),
    "events.index": ("GET", MA),
    "events.export": ("GET", MA),
    # issue 13: guards search the last 24 hours; everyone on the console gets the live stream
    "events_recent.index": ("GET", {"guard", "manager", "auditor"}),
    "live.stream": ("GET", ALL),
    # issue 11: each controller's health (heartbeat, journal, offline readers)
    "controllers.index": ("GET", ALL),
    "people_csv.import_form": ("GET", {"manager"}),
    "people_csv.preview": ("POST", {"manager"}),
    "people_csv.confirm": ("POST", {"manager"}),
    "people_csv.export": ("GET", MA),
    "people.index": ("GET", MA),
    "people.show": ("GET", MA),
    "people.create": ("GET", {"manager"}),
    "people.edit": ("GET", {"manager"}),
    "people.set_active": ("POST", {"manager"}),
    "people.add_training": ("POST", {"manager"}),
    "people.add_card": ("POST", {"manager"}),
    "people.enrol": ("POST", {"manager"}),
    "people.enrol_wait": ("GET", {"manager"}),
    "people.set_pin": ("POST", {"manager"}),
    "people.card_state": ("POST", {"manager"}),
    "people.forgive": ("POST", {"guard", "manager"}),
    "occupancy.index": ("GET", {"guard", "manager", "administrator", "auditor"}),
    "occupancy.forgive": ("POST", {"guard", "manager"}),
    "authorizations.index": ("GET", MA),
    "authorizations.people_json": ("GET", MA),
    "authorizations.create": ("POST", {"manager"}),
    "authorizations.approve": ("POST", {"manager"}),
    "authorizations.revoke": ("POST", {"manager"}),
    "authorizations.edit": ("POST", {"manager"}),
    "audit_log.index": ("GET", {"administrator", "auditor"}),
    "audit_log.verify": ("GET", {"auditor"}),
    "audit_log.export": ("GET", {"administrator", "auditor"}),
    "admin.index": ("GET", {"administrator", "auditor"}),
    "admin.operator_create": ("POST", {"administrator"}),
    "admin.operator_update": ("POST", {"administrator"}),
    "admin.area_update": ("POST", {"administrator"}),
    "admin.door_update": ("POST", {"administrator"}),
    "admin.operator_password": ("POST", {"administrator"}),
    "admin.setting_update": ("POST", {"administrator"}),
    "admin.tokens": ("GET", {"administrator", "auditor"}),
    "admin.token_revoke": ("POST", {"administrator"}),
    "incidents.index": ("GET", {"guard", "manager", "auditor"}),
    "incidents.show": ("GET", {"guard", "manager", "auditor"}),
    "incidents.snapshot": ("GET", {"guard", "manager", "auditor"}),
    "incidents.close": ("POST", {"manager"}),
    "review.index": ("GET", MA),
    "review.decide_authorization": ("POST", {"manager"}),
    "review.decide_designation": ("POST", {"manager"}),
    "reports.monthly": ("GET", MA),
    "reports.monthly_csv": ("GET", MA),
    "reports.monthly_pdf": ("GET", MA),
    # second factor and re-authentication (issue 12): the code and enrolment pages serve
    # half-signed-in sessions, so they are public and check the session themselves
    "mfa.challenge": ("GET", PUBLIC),
    "mfa.enrol": ("GET", PUBLIC),
    "mfa.disable": ("POST", ALL),
    "mfa.recovery_codes": ("POST", ALL),
    "mfa.reauth": ("GET", ALL),
    # four eyes: auditors read the requests; administrators and managers ask and decide
    "approvals.index": ("GET", {"manager", "administrator", "auditor"}),
    "approvals.approve": ("POST", {"manager", "administrator"}),
    "approvals.reject": ("POST", {"manager", "administrator"}),
    "approvals.cancel": ("POST", {"manager", "administrator"}),
    "approvals.new": ("POST", {"manager", "administrator"}),
    "approvals.mfa_reset": ("POST", {"manager", "administrator"}),
    "api.events": ("GET", MA),
    "api.occupancy": ("GET", ALL),
    "api.alarms": ("GET", ALL),
}


def _url(app: Flask, endpoint: str, site: Site, command_id: int) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {
        "person_id": site.tanaka,
        "card_id": site.tanaka_card,
        "auth_id": site.auth_tanaka,
        "area_id": site.server_room,
        "door_id": site.sr_door,
        "operator_id": 1,
        "alarm_id": 1,
        "visit_id": 1,
        "command_id": command_id,
        "incident_id": 1,
        "snapshot_id": 1,
        "request_id": 1,
        "token_id": 1,
    }
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **{k: values[k] for k in rule.arguments})


@pytest.fixture
def seeded(app: Flask, site: Site, session_factory):  # type: ignore[no-untyped-def]
    """An alarm, a visit and an enrol command so every URL with an id points at a row."""
    from db.commands import CommandKind, enqueue
    from db.models import Alarm, Visit
    from db.types import utcnow
    from web.accounts import create_api_token

    with session_factory() as s:
        s.add(Alarm(kind="door_forced", door_id=site.sr_door, raised_at=utcnow()))
        s.add(
            Visit(
                visitor_id=site.sato,
                area_id=site.server_room,
                purpose="点検",
                expected_from=utcnow(),
                expected_until=utcnow(),
            )
        )
        cmd = enqueue(s, CommandKind.ENROL, {"reader": "sr-in", "timeout": 30})
        # token 1 is the one the matrix revokes (admin.token_revoke), not one it signs in with
        spare = s.scalars(select(Operator).where(Operator.username == "auditor")).one()
        assert create_api_token(s, spare, "revoked by the matrix")[0] == 1
        tokens = {}
        for op in s.scalars(select(Operator)):
            tokens[op.username] = create_api_token(s, op, "matrix")[1]
        s.commit()
        return cmd.id, tokens


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    endpoints = {r.endpoint for r in app.url_map.iter_rules()} - {"static"}
    assert endpoints == set(EXPECTED), (
        f"missing: {endpoints - set(EXPECTED)}, stale: {set(EXPECTED) - endpoints}"
    )


@pytest.mark.parametrize("role", sorted(ALL) + ["anonymous"])
def test_role_route_matrix(app: Flask, site: Site, seeded, auth: Auth, role: str) -> None:  # type: ignore[no-untyped-def]
    command_id, tokens = seeded
    if role != "anonymous":
        assert auth.login(role).status_code == 302
    token = auth.token("/login")
    failures = []
    for endpoint, (method, allowed) in EXPECTED.items():
        url = _url(app, endpoint, site, command_id)
        if url.startswith("/api/"):  # integrations use tokens, not the browser session
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
            resp = auth.client.get(url, headers=headers)
        elif method == "GET":
            resp = auth.client.get(url)
        else:
            resp = auth.client.post(url, data={"csrf_token": token})
        is_api = url.startswith("/api/")
        if allowed == PUBLIC:
            ok = resp.status_code in (200, 302)
        elif role == "anonymous":
            ok = resp.status_code == (401 if is_api else 302) and (
                is_api or "/login" in resp.headers["Location"]
            )
        elif role in allowed:
            # allowed: anything but a refusal (empty POST bodies may give 302/400)
            ok = resp.status_code not in (401, 403, 405)
        else:
            ok = resp.status_code == 403
        if not ok:
            failures.append(f"{role} {method} {url} -> {resp.status_code}")
        if endpoint == "auth.logout" and role != "anonymous" and resp.status_code == 302:
            auth.login(role)  # the matrix logged us out: sign in again
            token = auth.token("/login")
    assert not failures, "\n".join(failures)


def test_a_view_without_a_permission_is_refused(app: Flask, site: Site, auth: Auth) -> None:
    @app.route("/forgotten")
    def forgotten() -> str:  # no @requires: deny by default
        return "secret"

    assert auth.client.get("/forgotten").status_code == 403
    auth.login("administrator")
    resp = auth.client.get("/forgotten")
    assert resp.status_code == 403 and b"secret" not in resp.data


def test_simulator_is_absent_outside_demo_mode(app: Flask, site: Site, auth: Auth) -> None:
    app.config["NYUTAI_DEMO"] = False
    auth.login("guard")
    assert auth.client.get("/simulator/").status_code == 404
    assert "/simulator/" not in auth.client.get("/dashboard").get_data(as_text=True)
