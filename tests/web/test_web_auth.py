"""Login, sessions, throttling, CSRF, headers, error pages, operators CLI, API tokens."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select, update

from db.models import AuditLog, Operator, WebSession
from db.types import utcnow
from tests.web.conftest import PASSWORD, Auth, Site


def _actions(session_factory) -> list[str]:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_login_logout_and_server_side_revocation(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    assert auth.client.get("/dashboard").status_code == 302
    resp = auth.login("guard")
    assert resp.status_code == 302 and resp.headers["Location"] == "/dashboard"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert auth.client.get("/dashboard").status_code == 200
    stolen = auth.client.get_cookie("nyutai_session").value
    assert auth.post("/logout").status_code == 302
    # replaying the cookie captured before logout gets nothing: the session row is revoked
    auth.client.set_cookie("nyutai_session", stolen)
    assert auth.client.get("/dashboard").status_code == 302
    with session_factory() as s:
        assert s.scalar(select(WebSession.revoked_at)) is not None
    assert _actions(session_factory)[-2:] == ["login", "logout"]


def test_session_id_is_renewed_on_login(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    auth.post("/logout")
    auth.login("guard")
    with session_factory() as s:
        rows = s.scalars(select(WebSession).order_by(WebSession.id)).all()
    assert len(rows) == 2 and rows[0].token_hash != rows[1].token_hash
    assert rows[0].revoked_at is not None and rows[1].revoked_at is None


def test_cookie_is_secure_over_tls(app: Flask, site: Site) -> None:
    client = app.test_client()
    auth = Auth(client)
    page = client.get("/login", base_url="https://console.example")
    from tests.web.conftest import csrf_from

    resp = client.post(
        "/login",
        base_url="https://console.example",
        headers={"Referer": "https://console.example/login"},  # checked strictly over TLS
        data={"username": "guard", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in resp.headers
    del auth


def test_throttled_after_repeated_failures(
    app: Flask, site: Site, auth: Auth, session_factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Five wrong passwords from one client make that client wait (issue 12: a growing delay,
    not a lock; tests/web/test_web_sec_throttle.py has the rest)."""
    from db.models import LoginThrottle

    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        assert auth.login("manager", "wrong password 123").status_code == 401
    # throttled: even the right password is not looked at for a while
    resp = auth.login("manager", PASSWORD)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert auth.client.get("/dashboard").status_code == 302
    assert _actions(session_factory).count("login_failed") == 1  # the rest is summed up
    # after the delay, the right password works again
    with session_factory() as s:
        s.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert auth.login("manager", PASSWORD).status_code == 302
    # no password ever reaches a log line or an audit row
    assert "wrong password 123" not in caplog.text and PASSWORD not in caplog.text
    with session_factory() as s:
        for row in s.scalars(select(AuditLog)):
            assert "wrong password" not in str(row.before) + str(row.after)


def test_unknown_user_gets_the_same_answer(app: Flask, site: Site, auth: Auth) -> None:
    a = auth.login("nobody", PASSWORD)
    b = auth.login("guard", "not the password!")
    assert a.status_code == b.status_code == 401
    assert (
        "ユーザー名またはパスワードが違います" in a.text
        and "ユーザー名またはパスワードが違います" in b.text
    )


def test_idle_timeout(app: Flask, site: Site, auth: Auth, session_factory) -> None:
    auth.login("guard")
    with session_factory() as s:
        s.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
        s.commit()
    resp = auth.client.get("/dashboard")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert "session_expired" in _actions(session_factory)


def test_polling_does_not_keep_an_idle_session_alive(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    old = utcnow() - timedelta(minutes=10)
    with session_factory() as s:
        s.execute(update(WebSession).values(last_seen_at=old))
        s.commit()
    assert auth.client.get("/dashboard/live").status_code == 200
    with session_factory() as s:
        assert abs((s.scalar(select(WebSession.last_seen_at)) - old).total_seconds()) < 1
    assert auth.client.get("/dashboard").status_code == 200
    with session_factory() as s:
        assert s.scalar(select(WebSession.last_seen_at)) > old + timedelta(minutes=9)


def test_csrf_is_required_on_forms(app: Flask, site: Site, auth: Auth) -> None:
    auth.login("guard")
    resp = auth.client.post("/logout")
    assert resp.status_code == 400
    assert auth.client.get("/dashboard").status_code == 200  # still signed in


def test_security_headers(app: Flask, site: Site, auth: Auth) -> None:
    resp = auth.client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    # no inline script anywhere (the CSP would block it anyway)
    auth.login("manager")
    for path in ("/dashboard", "/visitors/", "/events/", "/people/"):
        html = auth.client.get(path).text
        assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_errors_are_generic(app: Flask, site: Site, auth: Auth) -> None:
    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("database password is hunter2")

    from web.roles import PUBLIC, requires

    requires(PUBLIC)(boom)
    resp = auth.client.get("/boom")
    assert resp.status_code == 500
    assert "hunter2" not in resp.text and "Traceback" not in resp.text
    resp = auth.client.get("/no-such-page")
    assert resp.status_code == 404 and "Traceback" not in resp.text


def test_open_redirect_is_refused(app: Flask, site: Site, auth: Auth) -> None:
    token = auth.token()
    resp = auth.client.post(
        "/login?next=//evil.example/x",
        data={"username": "guard", "password": PASSWORD, "csrf_token": token},
    )
    assert resp.headers["Location"] == "/dashboard"


def test_secret_key_file_is_created_private(tmp_path: Path, db_url: str) -> None:
    from domain.config import parse_config
    from web import create_app

    cfg = parse_config({"database": {"url": db_url}}, tmp_path / "site.toml", tmp_path)
    app = create_app(cfg)
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert app.config["SECRET_KEY"] == key_file.read_bytes()
    assert create_app(cfg).config["SECRET_KEY"] == app.config["SECRET_KEY"]  # kept


def _site_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def test_operators_cli(tmp_path: Path, db_url: str, session_factory) -> None:
    from nyutai.cli import main

    cfg = _site_file(tmp_path, db_url)
    runner = CliRunner()
    base = [
        "operators",
        "create",
        "--config",
        str(cfg),
        "--username",
        "admin",
        "--role",
        "administrator",
        "--password-stdin",
    ]
    weak = runner.invoke(main, base, input="short\n")
    assert weak.exit_code != 0 and "weak password" in weak.output
    ok = runner.invoke(main, base, input="a long enough passphrase\n")
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(main, base, input="a long enough passphrase\n")
    # four eyes: only the first administrator comes from the command line
    assert again.exit_code != 0 and "an active administrator exists" in again.output
    prompted = runner.invoke(
        main,
        ["operators", "create", "--config", str(cfg), "--username", "guard1", "--role", "guard"],
        input="another passphrase 42\nanother passphrase 42\n",
    )
    assert prompted.exit_code == 0, prompted.output
    taken = runner.invoke(
        main,
        ["operators", "create", "--config", str(cfg), "--username", "guard1", "--role", "guard"],
        input="another passphrase 42\nanother passphrase 42\n",
    )
    assert taken.exit_code != 0 and "taken" in taken.output
    with session_factory() as s:
        op = s.scalar(select(Operator).where(Operator.username == "admin"))
        assert op is not None and op.role == "administrator"
        assert op.password_hash.startswith("$argon2") and "passphrase" not in op.password_hash


def test_api_tokens(app: Flask, site: Site, tmp_path: Path, db_url: str, client) -> None:  # type: ignore[no-untyped-def]
    from nyutai.cli import main

    cfg = _site_file(tmp_path, db_url)
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["api-token", "create", "--config", str(cfg), "--username", "auditor", "--label", "SIEM"],
    )
    assert out.exit_code == 0, out.output
    token = out.output.strip()
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401
    resp = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and resp.json == {"events": [], "next": None}
    guard = runner.invoke(
        main, ["api-token", "create", "--config", str(cfg), "--username", "guard", "--label", "x"]
    ).output.strip()
    assert (
        client.get("/api/v1/events", headers={"Authorization": f"Bearer {guard}"}).status_code
        == 403
    )
    assert (
        client.get("/api/v1/alarms", headers={"Authorization": f"Bearer {guard}"}).status_code
        == 200
    )
    # revoked tokens stop working
    assert runner.invoke(main, ["api-token", "revoke", "--config", str(cfg), "1"]).exit_code == 0
    assert (
        client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
