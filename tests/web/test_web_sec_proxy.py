"""Issue 12, defect 6: behind a TLS reverse proxy, Secure cookies, HSTS and the client's address.

``[web] trusted_proxies`` names the proxies; X-Forwarded-For/-Proto are believed only from
them (Werkzeug's ProxyFix, applied per request). From anyone else the headers are ignored:
otherwise any client could write any address into the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from db.models import AuditLog, WebSession
from domain.config import ConfigError, parse_config
from tests.web.conftest import PASSWORD, csrf_from

PROXY = "10.0.0.5"
CLIENT = "203.0.113.50"
FORWARDED = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}


@pytest.fixture
def proxied_app(app: Flask) -> Flask:
    from web.proxy import install_trusted_proxies

    install_trusted_proxies(app, [PROXY, "fd00::/8"])
    return app


def _login(app: Flask, remote: str, headers: dict[str, str]) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote
    page = client.get("/login", headers=headers)
    return page, client.post(
        "/login",
        # over TLS Flask-WTF also checks that the Referer is this site (the test host)
        headers={**headers, "Referer": "https://localhost/login"},
        data={"username": "guard", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )


def test_a_trusted_proxy_is_believed(proxied_app: Flask, site: Any, session_factory) -> None:
    page, resp = _login(proxied_app, PROXY, FORWARDED)
    assert "Strict-Transport-Security" in page.headers
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]
    with session_factory() as s:
        login = s.scalars(select(AuditLog).where(AuditLog.action == "login")).one()
        assert login.remote_addr == CLIENT
        assert s.scalar(select(WebSession.remote_addr)) == CLIENT


def test_anyone_else_is_not(proxied_app: Flask, site: Any, session_factory) -> None:
    stranger = "192.0.2.99"
    page, resp = _login(proxied_app, stranger, FORWARDED)
    assert "Strict-Transport-Security" not in page.headers
    assert resp.status_code == 302
    assert "Secure" not in resp.headers["Set-Cookie"]
    with session_factory() as s:
        login = s.scalars(select(AuditLog).where(AuditLog.action == "login")).one()
        assert login.remote_addr == stranger


def test_only_the_last_hop_added_by_the_proxy_counts(
    proxied_app: Flask, site: Any, session_factory
) -> None:
    """A client can send its own X-Forwarded-For; the proxy appends the real address."""
    headers = {"X-Forwarded-For": f"1.2.3.4, {CLIENT}", "X-Forwarded-Proto": "https"}
    _login(proxied_app, "fd00::1", headers)
    with session_factory() as s:
        login = s.scalars(select(AuditLog).where(AuditLog.action == "login")).one()
        assert login.remote_addr == CLIENT


def test_the_site_file_setting(tmp_path: Path, db_url: str) -> None:
    from web import create_app

    raw = {"database": {"url": db_url}, "web": {"trusted_proxies": ["127.0.0.1", "10.1.0.0/16"]}}
    cfg = parse_config(raw, tmp_path / "site.toml", tmp_path)
    assert cfg.web.trusted_proxies == ["127.0.0.1", "10.1.0.0/16"]
    app = create_app(cfg)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert "Strict-Transport-Security" in client.get("/login", headers=FORWARDED).headers
    with pytest.raises(ConfigError, match="trusted_proxies"):
        parse_config(
            {"web": {"trusted_proxies": ["proxy.example"]}}, tmp_path / "site.toml", tmp_path
        )


def test_reverse_proxy_doc_ships_a_tls_example() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "reverse-proxy.md").read_text()
    assert "trusted_proxies" in text and "X-Forwarded-Proto" in text
    assert "tls" in text.lower() and ("reverse_proxy" in text or "proxy_pass" in text)
