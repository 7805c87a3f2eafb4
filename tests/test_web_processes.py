"""Two real ``nyutai web`` processes on one PostgreSQL database serve one console.

Both run from one site file and data directory (as behind one proxy on one machine), each
on its own port, started at the same moment on a fresh data directory (so they also race to
create the signing key). A browser's cookies go to both (cookies do not depend on the port):
signing in through one and working through the other must behave as one console.
"""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import AuditLog, Operator
from nyutai import DEMO_SITE
from tests.pgpair import free_port
from tests.processes import CSRF_RE, ROOT, Browser, start, stop, wait_for, web_up
from web.accounts import hash_password

pytestmark = pytest.mark.postgres

PASSWORD = "two-consoles-" + "pw" * 8
GUARDS = [f"guard{i}" for i in range(6)]


@pytest.fixture
def consoles(pg_url: str, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    text = Path(DEMO_SITE).read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///nyutai.db"', f'url = "{pg_url}"', 1)
    site = tmp_path / "site.toml"
    site.write_text(text, encoding="utf-8")
    upgrade(pg_url)
    engine = make_engine(pg_url)
    with session_scope(make_session_factory(engine)) as s:
        pw = hash_password(PASSWORD)
        for name in ["guard", *GUARDS]:
            s.add(Operator(username=name, display_name=name, role="guard", password_hash=pw))
    engine.dispose()
    ports = free_port(), free_port()
    procs = [
        start(["web", "--config", str(site), "--port", str(p)], tmp_path / f"web{p}.log")
        for p in ports
    ]
    try:
        for p in ports:
            up = functools.partial(web_up, Browser(f"http://127.0.0.1:{p}"))
            wait_for("a console", up, 60, *procs)
        yield site, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        stop(*procs)


def _on(browser: Browser, base: str) -> Browser:
    """The same browser (same cookie jar) talking to another console process."""
    other = Browser(base)
    other.jar = browser.jar
    other.opener = browser.opener
    return other


def test_session_and_csrf_cross_processes(consoles: tuple[Path, str, str]) -> None:
    _, a_url, b_url = consoles
    a = Browser(a_url)
    b = _on(a, b_url)
    # the sign-in form comes from A, the POST goes to B: B accepts A's CSRF token
    _, page = a.get("/login")
    token = CSRF_RE.search(page)
    assert token
    status, _ = b.post(
        "/login", {"username": "guard", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert status == 302
    # the session B created is good on A
    status, page = a.get("/dashboard")
    assert status == 200 and "guard" in page
    # a form rendered by B, posted to A: sign out there
    _, page = b.get("/dashboard")
    token = CSRF_RE.search(page)
    assert token
    stolen = copy.deepcopy(list(a.jar))  # the session cookie as it was before signing out
    status, _ = a.post("/logout", {"csrf_token": token.group(1)})
    assert status == 302
    # the signed-out session is dead on B too, even replayed with the old cookie
    replay = Browser(b_url)
    for cookie in stolen:
        replay.jar.set_cookie(cookie)
    status, _ = replay.get("/dashboard")
    assert status == 302


def test_throttling_counts_across_processes(consoles: tuple[Path, str, str]) -> None:
    _, a_url, b_url = consoles
    a = Browser(a_url)
    b = _on(a, b_url)
    # five free failures for one client and name (db.throttle), split over both processes
    for browser in (a, b, a, b, a):
        _, page = browser.get("/login")
        token = CSRF_RE.search(page)
        assert token
        status, _ = browser.post(
            "/login", {"username": "guard", "password": "wrong", "csrf_token": token.group(1)}
        )
        assert status == 401
    for browser in (b, a):  # the sixth is refused wherever it lands, even with the password
        _, page = browser.get("/login")
        token = CSRF_RE.search(page)
        assert token
        status, _ = browser.post(
            "/login", {"username": "guard", "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert status == 429


def test_audit_chain_with_two_writers(consoles: tuple[Path, str, str], pg_url: str) -> None:
    site, a_url, b_url = consoles
    failures: list[str] = []

    def sign_in(name: str, base: str) -> None:
        status = Browser(base).sign_in(name, PASSWORD)
        if status != 302:
            failures.append(f"{name} at {base}: {status}")

    threads = [
        threading.Thread(target=sign_in, args=(name, (a_url, b_url)[i % 2]))
        for i, name in enumerate(GUARDS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    engine = make_engine(pg_url)
    with session_scope(make_session_factory(engine)) as s:
        logins = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "login")
        )
    engine.dispose()
    assert logins == len(GUARDS)
    verify = subprocess.run(
        [sys.executable, "-m", "nyutai", "verify", "--config", str(site), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
