"""Issue 12: wrong second-factor codes are throttled like wrong passwords.

Before: a guesser who knew a manager's password had 5 TOTP (or recovery-code) guesses per
half-signed-in session and could start a new session with the password at once, as often as
they liked: nothing counted codes per client or per account, every wrong code was an audit
row, and re-authentication before a four-eyes step counted only per session. Now db.throttle
counts codes (its ``code-`` keys) per (client, account), per client and per account, with
the growing delay and the same 429 answer as passwords, and one summary row per window.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from db import throttle
from db.models import AuditLog, LoginThrottle
from db.types import utcnow
from tests.web.conftest import PASSWORD, TOTP_SEEDS, Auth, Site, csrf_from, totp_code

FLASH = re.compile(r'<p class="flash (\w+)" role="status">([^<]*)</p>')


def _client(app: Flask, addr: str) -> Auth:
    client: FlaskClient = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return Auth(client)


def _answer(resp: Any) -> tuple[int, list[tuple[str, str]], bool]:
    return resp.status_code, FLASH.findall(resp.text), "Retry-After" in resp.headers


def _password_step(auth: Auth, username: str = "manager") -> Any:
    resp = auth.client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": auth.token()},
    )
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/mfa")
    return resp


def _code(auth: Auth, code: str) -> Any:
    page = auth.client.get("/login/mfa")
    assert page.status_code == 200
    return auth.client.post("/login/mfa", data={"code": code, "csrf_token": csrf_from(page.text)})


def _wrong_totp(username: str = "manager") -> str:
    """A six-digit code none of the steps the console accepts now would take."""
    totp, now = pyotp.TOTP(TOTP_SEEDS[username]), utcnow()
    near = {totp.at(now + timedelta(seconds=s)) for s in (-60, -30, 0, 30, 60)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


WRONG_RECOVERY = "aaaa-bbbb-cccc"  # the recovery codes' shape, not one of the manager's


def _expire_blocks(session_factory: Any) -> None:
    with session_factory() as s:
        s.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))
        s.commit()


def _throttled_password_answer(app: Flask) -> tuple[int, list[tuple[str, str]], bool]:
    client = _client(app, "203.0.113.99")
    for _ in range(5):
        client.login("guard", "wrong password 12345")
    return _answer(client.login("guard", "wrong password 12345"))


def test_wrong_codes_are_throttled_across_sign_ins_like_passwords(
    app: Flask, site: Site, session_factory: Any
) -> None:
    guesser = _client(app, "198.51.100.7")  # knows the manager's password, not the phone
    _password_step(guesser)
    answers = [_answer(_code(guesser, _wrong_totp())) for _ in range(2)]
    answers += [_answer(_code(guesser, WRONG_RECOVERY)) for _ in range(2)]
    # a wrong TOTP code and a wrong recovery code are answered alike
    assert len(set(map(repr, answers))) == 1 and answers[0][0] == 401
    last = _code(guesser, _wrong_totp())  # the fifth: this half session ends
    assert last.status_code == 302 and last.headers["Location"] == "/login"
    # the password again does not start the count again: even the right code waits now
    _password_step(guesser)
    right = totp_code(app, "manager", TOTP_SEEDS["manager"])
    blocked = _code(guesser, right)
    assert _answer(blocked) == _throttled_password_answer(app)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert guesser.client.get("/events/").status_code == 302  # not signed in
    with session_factory() as s:
        row = s.get(LoginThrottle, "code-pair:198.51.100.7|manager")
        assert row is not None and row.failures == 5 and row.blocked_until is not None
    # a delay, not a lock: when it has passed the right code is looked at and works
    _expire_blocks(session_factory)
    resp = _code(guesser, totp_code(app, "manager", TOTP_SEEDS["manager"]))
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"


def test_codes_are_counted_per_account_from_many_clients(
    app: Flask, site: Site, session_factory: Any
) -> None:
    owner = _client(app, "192.0.2.10")  # the manager's own PC, where they signed in before
    assert owner.login("manager").headers["Location"] == "/dashboard"
    owner.post("/logout")
    for n in range(5):  # 4 wrong codes from each of 5 addresses: 20 for the account
        guesser = _client(app, f"198.51.100.{n + 1}")
        _password_step(guesser)
        for _ in range(4):
            assert _code(guesser, _wrong_totp()).status_code == 401
    # a new address (whose own counts are zero) now waits too, even with the right code ...
    fresh = _client(app, "198.51.100.50")
    _password_step(fresh)
    assert _code(fresh, totp_code(app, "manager", TOTP_SEEDS["manager"])).status_code == 429
    # ... but the guessers cannot keep the manager out of their own PC
    assert owner.login("manager").headers["Location"] == "/dashboard"
    with session_factory() as s:
        row = s.get(LoginThrottle, "code-name:manager")
        assert row is not None and row.failures == 20


def test_wrong_codes_are_one_audit_row_per_window(
    app: Flask, site: Site, session_factory: Any
) -> None:
    for n in range(3):
        guesser = _client(app, f"198.51.100.{n + 20}")
        _password_step(guesser)
        for _ in range(4):
            _code(guesser, _wrong_totp() if n % 2 else WRONG_RECOVERY)
    with session_factory() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "login.code_failed")).all()
        assert len(rows) == 1 and rows[0].remote_addr == "198.51.100.20"
        s.execute(update(LoginThrottle).values(window_started_at=utcnow() - timedelta(minutes=16)))
        s.commit()
    with session_factory() as s:
        throttle.flush_due(s, utcnow())
        s.commit()
        summary = s.scalars(
            select(AuditLog).where(AuditLog.action == "login.code_failed_repeated")
        ).one()
    assert summary.username == "manager" and summary.after["failures"] == 11
    assert summary.after["addresses"] == [f"198.51.100.{n + 20}" for n in range(3)]


def _reauth_page(auth: Auth) -> str:
    page = auth.client.get("/reauth?next=/approvals/")
    assert page.status_code == 200
    return csrf_from(page.text)


def test_reauthentication_is_throttled_across_sessions(
    app: Flask, site: Site, session_factory: Any
) -> None:
    # two signed-in browsers of one manager at one address (or one stolen cookie and a
    # second sign-in): the per-session limit alone would allow endless guesses
    first, second = _client(app, "192.0.2.30"), _client(app, "192.0.2.30")
    first.login("manager")
    second.login("manager")
    token = _reauth_page(first)
    for _ in range(4):
        resp = first.client.post("/reauth", data={"password": "wrong guess 1", "csrf_token": token})
        assert resp.status_code == 401
    token = _reauth_page(second)
    assert (
        second.client.post(
            "/reauth", data={"password": "wrong guess 2", "csrf_token": token}
        ).status_code
        == 401
    )
    blocked = second.client.post("/reauth", data={"password": PASSWORD, "csrf_token": token})
    assert _answer(blocked) == _throttled_password_answer(app)
    with session_factory() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "reauth_failed")).all()
        assert len(rows) == 1  # the rest goes into the window's summary
        assert s.scalars(select(AuditLog).where(AuditLog.action == "reauth")).all() == []
    # the delay passes: the right password is looked at again
    _expire_blocks(session_factory)
    ok = second.client.post(
        "/reauth?next=/approvals/", data={"password": PASSWORD, "csrf_token": token}
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/approvals/"
