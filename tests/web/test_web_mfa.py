"""TOTP sign-in (RFC 6238 codes from pyotp), recovery codes, forced enrolment for managers,
re-authentication and the absolute session lifetime. Time is the app's injected clock."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from db.models import AuditLog, Operator, OperatorMfa, RecoveryCode, WebSession
from db.types import utcnow
from tests.web.conftest import PASSWORD, TOTP_SEEDS, Auth, Site, csrf_from

SEED_RE = re.compile(r'<code id="mfa-seed">([A-Z2-7 ]+)</code>')
CODE_RE = re.compile(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>")


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock(app: Flask) -> Clock:
    c = Clock()
    app.config["NYUTAI_CLOCK"] = c
    return c


def _password_step(auth: Auth, username: str, password: str = PASSWORD) -> Any:
    token = auth.token()
    return auth.client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def _code_step(auth: Auth, code: str) -> Any:
    page = auth.client.get("/login/mfa")
    assert page.status_code == 200
    return auth.client.post("/login/mfa", data={"code": code, "csrf_token": csrf_from(page.text)})


def _actions(session_factory: Any) -> list[str]:
    with session_factory() as s:
        return [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]


def _add_operator(session_factory: Any, username: str, role: str) -> int:
    from tests.web.conftest import _password_hash

    with session_factory() as s:
        op = Operator(username=username, display_name=username, role=role)
        op.password_hash = _password_hash()
        s.add(op)
        s.commit()
        return op.id


def _enrol(auth: Auth) -> tuple[str, list[str]]:
    """Go through the enrolment page with a real authenticator code: (seed, recovery codes)."""
    page = auth.client.get("/mfa/enrol")
    assert page.status_code == 200 and 'src="data:image/svg+xml' in page.text  # QR drawn here
    seed = SEED_RE.search(page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    wrong = auth.client.post(
        "/mfa/enrol", data={"code": "000000", "csrf_token": csrf_from(page.text)}
    )
    assert wrong.status_code == 302 and "/mfa/enrol" in wrong.headers["Location"]
    page = auth.client.get("/mfa/enrol")  # a new seed each time the page is shown
    seed = SEED_RE.search(page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    now = auth.client.application.config.get("NYUTAI_CLOCK", utcnow)()
    done = auth.client.post(
        "/mfa/enrol",
        data={"code": pyotp.TOTP(seed).at(now), "csrf_token": csrf_from(page.text)},
    )
    assert done.status_code == 200, done.text
    codes = CODE_RE.findall(done.text)
    assert len(codes) == 10
    return seed, codes


def test_manager_without_a_second_factor_must_enrol_first(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock
) -> None:
    _add_operator(session_factory, "newmgr", "manager")
    resp = _password_step(auth, "newmgr")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/mfa/enrol")
    # nothing else opens before the enrolment: every page leads back to it
    for path in ("/dashboard", "/events/", "/authorizations/", "/account"):
        r = auth.client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/mfa/enrol"), path
    seed, codes = _enrol(auth)
    assert auth.client.get("/dashboard").status_code == 200
    with session_factory() as s:
        row = s.scalars(select(OperatorMfa)).all()[-1]
        assert row.enrolled_at is not None and seed not in row.secret_enc
        hashes = [r.code_hash for r in s.scalars(select(RecoveryCode))]
        assert len(hashes) == 10 and all(h.startswith("$argon2") for h in hashes)
        assert not any(c.replace("-", "") in h for c in codes for h in hashes)
        audit_text = " ".join(str((a.before, a.after)) for a in s.scalars(select(AuditLog)))
    assert seed not in audit_text and not any(c in audit_text for c in codes)
    assert _actions(session_factory)[-2:] == ["mfa.enrol", "login"]
    # the seed is never shown again: the account page has no trace of it
    assert seed not in auth.client.get("/account").text


def test_guard_and_auditor_may_sign_in_without_a_second_factor(
    app: Flask, site: Site, auth: Auth
) -> None:
    resp = auth.login("guard")
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"


def test_totp_sign_in_refuses_wrong_and_replayed_codes(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock
) -> None:
    totp = pyotp.TOTP(TOTP_SEEDS["manager"])
    resp = _password_step(auth, "manager")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/mfa")
    assert auth.client.get("/dashboard").status_code == 302  # not signed in yet
    wrong = f"{(int(totp.at(clock.now)) + 1) % 1_000_000:06d}"
    assert _code_step(auth, wrong).status_code == 401
    assert auth.client.get("/events/").headers["Location"].startswith("/login/mfa")
    code = totp.at(clock.now)
    resp = _code_step(auth, code)
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"
    assert auth.client.get("/events/").status_code == 200
    auth.post("/logout")
    # the same code again, still within its 30 seconds: a replay, refused
    _password_step(auth, "manager")
    replay = _code_step(auth, code)
    assert replay.status_code == 401 and "使用済み" in replay.text
    assert auth.client.get("/events/").status_code == 302
    # the next step's code works
    clock.advance(seconds=30)
    assert _code_step(auth, totp.at(clock.now)).status_code == 302
    assert auth.client.get("/events/").status_code == 200
    actions = _actions(session_factory)
    assert "login.code_failed" in actions and "login.code_replayed" in actions


def test_five_wrong_codes_end_the_half_signed_in_session(
    app: Flask, site: Site, auth: Auth, clock: Clock
) -> None:
    _password_step(auth, "manager")
    for _ in range(4):
        assert _code_step(auth, "999999").status_code == 401
    page = auth.client.get("/login/mfa")
    last = auth.client.post(
        "/login/mfa", data={"code": "999999", "csrf_token": csrf_from(page.text)}
    )
    assert last.status_code == 302 and last.headers["Location"] == "/login"
    # the right code is now too late: the password must be given again
    assert auth.client.get("/login/mfa").headers["Location"] == "/login"


def test_recovery_code_works_once(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock
) -> None:
    _add_operator(session_factory, "newmgr", "manager")
    _password_step(auth, "newmgr")
    _seed, codes = _enrol(auth)
    auth.post("/logout")
    _password_step(auth, "newmgr")
    resp = _code_step(auth, codes[3].upper().replace("-", " "))  # as typed from paper
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"
    assert "9" in auth.client.get("/dashboard").text  # "9 are left" flashed
    auth.post("/logout")
    _password_step(auth, "newmgr")
    assert _code_step(auth, codes[3]).status_code == 401
    assert _code_step(auth, codes[4]).status_code == 302
    assert "mfa.recovery_code_used" in _actions(session_factory)


def test_guard_enrols_optionally_and_is_then_asked_for_codes(
    app: Flask, site: Site, auth: Auth, clock: Clock, session_factory: Any
) -> None:
    auth.login("guard")
    assert "mfa-start" in auth.client.get("/account").text
    seed, _codes = _enrol(auth)
    auth.post("/logout")
    resp = _password_step(auth, "guard")
    assert resp.headers["Location"].startswith("/login/mfa")
    clock.advance(seconds=30)
    assert _code_step(auth, pyotp.TOTP(seed).at(clock.now)).status_code == 302
    from web.accounts import create_api_token

    with session_factory() as s:
        guard = s.scalars(select(Operator).where(Operator.username == "guard")).one()
        _tid, token = create_api_token(s, guard, "SIEM")
        s.commit()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/alarms", headers=headers).status_code == 200
    # turning it off needs a recent proof of identity: here, the sign-in a moment ago
    auth.post("/mfa/disable", page="/account")
    # the factor that guarded the account is gone, and the account's tokens with it
    assert api.get("/api/v1/alarms", headers=headers).status_code == 401
    auth.post("/logout")
    assert auth.login("guard").headers["Location"] == "/dashboard"


def test_managers_cannot_turn_the_second_factor_off(
    app: Flask, site: Site, auth: Auth, session_factory: Any
) -> None:
    auth.login("manager")
    auth.post("/mfa/disable", page="/account")
    with session_factory() as s:
        mid = s.scalar(select(Operator.id).where(Operator.username == "manager"))
        assert s.get(OperatorMfa, mid) is not None


def test_absolute_lifetime_ends_a_session_even_when_active(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock
) -> None:
    auth.login("guard")
    # busy all day: a request every 20 minutes keeps the 30-minute idle timeout away
    for _ in range(35):  # 11 h 40 min
        clock.advance(minutes=20)
        assert auth.client.get("/dashboard").status_code == 200
    clock.advance(minutes=21)  # 12 h 01 min after sign-in
    resp = auth.client.get("/dashboard")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    with session_factory() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "session_expired")).one()
        assert row.after == {"why": "lifetime"}
        assert s.scalar(select(WebSession.revoked_at)) is not None


def test_idle_timeout_still_applies(app: Flask, site: Site, auth: Auth, clock: Clock) -> None:
    auth.login("guard")
    clock.advance(minutes=31)
    assert auth.client.get("/dashboard").status_code == 302


def test_reauthentication_before_a_four_eyes_step(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock
) -> None:
    from db.approvals import Actor, request_approval
    from db.models import ApprovalKind

    with session_factory() as s:
        admin = s.scalars(select(Operator).where(Operator.username == "administrator")).one()
        req = request_approval(
            s, ApprovalKind.RETENTION, {"retention_years": 2, "channel": "console"}, Actor.of(admin)
        )
        s.commit()
        req_id = req.id
    auth.login("manager")
    clock.advance(minutes=6)  # the sign-in is now older than reauth_minutes (5)
    resp = auth.post(f"/approvals/{req_id}/approve", page="/approvals/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/reauth")
    with session_factory() as s:
        from db.settings import RETENTION_YEARS, get_setting

        assert get_setting(s, RETENTION_YEARS) == 1  # nothing happened
    page = auth.client.get(resp.headers["Location"])
    bad = auth.client.post(
        "/reauth", data={"password": "wrong password!!", "csrf_token": csrf_from(page.text)}
    )
    assert bad.status_code == 401
    ok = auth.client.post(
        "/reauth?next=/approvals/",
        data={"password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/approvals/"
    auth.post(f"/approvals/{req_id}/approve", page="/approvals/")
    with session_factory() as s:
        assert get_setting(s, RETENTION_YEARS) == 2
    assert {"reauth_failed", "reauth"} <= set(_actions(session_factory))


def test_second_factor_reset_is_four_eyes(
    app: Flask, site: Site, session_factory: Any, clock: Clock
) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    with session_factory() as s:
        mid = s.scalar(select(Operator.id).where(Operator.username == "manager"))
    manager = Auth(app.test_client())
    manager.login("manager")
    admin.post(f"/approvals/mfa-reset/{mid}", {"reason": "スマートフォン紛失"}, page="/admin/")
    with session_factory() as s:
        from db.models import ApprovalRequest

        req = s.scalars(select(ApprovalRequest)).one()
    admin.post(f"/approvals/{req.id}/approve", page="/approvals/")  # own request: refused
    manager.post(f"/approvals/{req.id}/approve", page="/approvals/")  # its subject: refused
    with session_factory() as s:
        assert s.get(OperatorMfa, mid) is not None
    other = Auth(app.test_client())
    other.login("manager2")
    other.post(f"/approvals/{req.id}/approve", page="/approvals/")
    with session_factory() as s:
        assert s.get(OperatorMfa, mid) is None
        row = s.scalars(select(AuditLog).where(AuditLog.action == "mfa.reset")).one()
        assert row.after["requested_by"] == "administrator"
        assert row.after["approved_by"] == "manager2"
    assert manager.client.get("/dashboard").status_code == 302  # signed out
    resp = _password_step(manager, "manager")
    assert resp.headers["Location"].startswith("/mfa/enrol")


def test_the_seed_is_never_logged(
    app: Flask, site: Site, auth: Auth, session_factory: Any, clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    _add_operator(session_factory, "newmgr", "manager")
    _password_step(auth, "newmgr")
    seed, codes = _enrol(auth)
    text = caplog.text
    assert seed not in text and not any(c in text for c in codes)


def test_demo_managers_sign_in_with_the_printed_totp_key(tmp_path: Any) -> None:
    """The demo enrols its administrator and managers and prints their keys once: with the
    printed password and key, the demo's manager gets in (and a second manager exists)."""
    from db.engine import make_engine, make_session_factory, session_scope
    from db.migrate import upgrade
    from domain.config import load_config
    from nyutai.demo import prepare_data_dir, seed_demo
    from web import create_app

    cfg = load_config(prepare_data_dir(tmp_path / "demo"))
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        secrets = seed_demo(s, cfg)
    assert secrets is not None
    logins = {x.username: x for x in secrets.operators}
    assert {x.username for x in secrets.operators if x.role == "manager"} == {"manager", "manager2"}
    assert logins["guard"].totp_seed is None and logins["admin"].totp_seed
    app = create_app(cfg)
    client = app.test_client()
    auth = Auth(client)
    mgr = logins["manager"]
    resp = auth.login("manager", mgr.password, seed=mgr.totp_seed)
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"
    assert client.get("/approvals/").status_code == 200
    engine.dispose()


def test_break_glass_reset_on_the_command_line(
    app: Flask, site: Site, tmp_path: Any, db_url: str, session_factory: Any
) -> None:
    from click.testing import CliRunner

    from nyutai.cli import main

    cfg = tmp_path / "site.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    manager = Auth(app.test_client())
    manager.login("administrator")
    args = ["operators", "reset-mfa", "--config", str(cfg), "--username", "administrator"]
    out = CliRunner().invoke(main, [*args, "--reason", "唯一の管理者が端末紛失"])
    assert out.exit_code == 0, out.output
    with session_factory() as s:
        aid = s.scalar(select(Operator.id).where(Operator.username == "administrator"))
        assert s.get(OperatorMfa, aid) is None
        row = s.scalars(select(AuditLog).where(AuditLog.action == "mfa.reset")).one()
        assert row.after["reason"] == "唯一の管理者が端末紛失"
    assert manager.client.get("/dashboard").status_code == 302  # signed out
    assert _password_step(manager, "administrator").headers["Location"].startswith("/mfa/enrol")
