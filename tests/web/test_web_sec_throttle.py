"""Issue 12, defect 4: sign-in throttling without a lock an outsider can hold, and no user list.

Before: five wrong passwords locked the account for 15 minutes (repeatable forever by anyone),
a real user's 6th attempt answered 429 while an unknown name kept answering 401, and every
failure was one audit row. Now: a growing delay per client address, per (address, name) and
per name, kept in the database (``login_throttle``) so every web process sees it; known and
unknown names get the same answers; repeated failures are one audit row per name and window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from db.models import AuditLog, LoginThrottle
from db.types import utcnow
from tests.web.conftest import PASSWORD, Auth, Site

FLASH = re.compile(r'<p class="flash (\w+)" role="status">([^<]*)</p>')


def _client(app: Flask, addr: str) -> Auth:
    client: FlaskClient = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return Auth(client)


def _answer(resp) -> tuple[int, list[tuple[str, str]], bool]:  # type: ignore[no-untyped-def]
    return resp.status_code, FLASH.findall(resp.text), "Retry-After" in resp.headers


def _expire_blocks(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        s.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))
        s.commit()


def test_an_outsider_cannot_lock_the_administrator_out(
    app: Flask, site: Site, session_factory
) -> None:
    admin = _client(app, "192.0.2.10")  # the administrator's own PC
    assert admin.login("administrator").status_code == 302
    admin.post("/logout")
    # a distributed attacker: many addresses, many wrong passwords, retried whenever allowed
    statuses = []
    for n in range(8):
        outsider = _client(app, f"198.51.100.{n + 1}")
        for _ in range(8):
            statuses.append(outsider.login("administrator", "guess guess guess").status_code)
    assert set(statuses) == {401, 429}
    # the attacker's own addresses are slowed down ...
    assert _client(app, "198.51.100.1").login("administrator", PASSWORD).status_code == 429
    # ... but the administrator signs in from the PC they use
    assert admin.login("administrator").status_code == 302
    # and the throttle never becomes a lock: when the delay has passed, anyone may try again
    _expire_blocks(session_factory)
    assert _client(app, "198.51.100.1").login("administrator", PASSWORD).status_code == 302


def test_known_and_unknown_names_are_answered_alike(app: Flask, site: Site) -> None:
    answers = {}
    for n, name in enumerate(("manager", "no-such-operator")):
        client = _client(app, f"203.0.113.{n + 1}")
        answers[name] = [_answer(client.login(name, "wrong password 12345")) for _ in range(8)]
    assert answers["manager"] == answers["no-such-operator"]
    statuses = [a[0] for a in answers["manager"]]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    assert answers["manager"][-1][2]  # Retry-After tells the client how long to wait


def test_unknown_names_cost_a_password_verification(app: Flask, site: Site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from web import accounts

    calls = []
    real = accounts._hasher

    class Counting:  # PasswordHasher has slots: wrap it instead of patching a method
        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_ == accounts._DUMMY_HASH)
            return real.verify(hash_, password)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(accounts, "_hasher", Counting())
    _client(app, "203.0.113.9").login("no-such-operator", "wrong password 12345")
    _client(app, "203.0.113.10").login("guard", "wrong password 12345")
    assert calls == [True, False]  # the dummy hash for the unknown name, the real one else


def test_the_delay_grows_and_ends(app: Flask, site: Site, session_factory) -> None:
    client = _client(app, "192.0.2.50")
    for _ in range(5):
        assert client.login("guard", "wrong password 12345").status_code == 401
    delays = []
    for _ in range(4):
        # during the delay even the right password is not looked at
        assert client.login("guard", PASSWORD).status_code == 429
        with session_factory() as s:
            row = s.get(LoginThrottle, "pair:192.0.2.50|guard")
            assert row is not None and row.blocked_until is not None
            delays.append((row.blocked_until - row.last_failure_at).total_seconds())
        _expire_blocks(session_factory)
        assert client.login("guard", "wrong password 12345").status_code == 401
    assert delays == sorted(delays) and delays[0] < delays[-1]
    _expire_blocks(session_factory)
    assert client.login("guard", PASSWORD).status_code == 302
    with session_factory() as s:
        row = s.get(LoginThrottle, "pair:192.0.2.50|guard")
        assert row is None or (row.failures == 0 and row.blocked_until is None)


def test_the_throttle_is_shared_by_web_processes(
    app: Flask, site: Site, db_url: str, session_factory
) -> None:
    from web import create_app

    other = create_app(
        test_config={"SECRET_KEY": "another-process-" + "y" * 40, "NYUTAI_DATABASE_URL": db_url}
    )
    first = _client(app, "192.0.2.77")
    for _ in range(5):
        assert first.login("guard", "wrong password 12345").status_code == 401
    second = _client(other, "192.0.2.77")
    assert second.login("guard", PASSWORD).status_code == 429


def test_repeated_failures_are_aggregated_in_the_audit_log(
    app: Flask, site: Site, session_factory
) -> None:
    for n in range(3):
        client = _client(app, f"198.51.100.{n + 20}")
        for _ in range(7):  # 5 evaluated failures, then 2 refusals while throttled
            client.login("manager", "wrong password 12345")
    with session_factory() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action.like("login%"))).all()
    assert [r.action for r in rows] == ["login_failed"]  # the first one at once, then counted
    assert rows[0].username == "manager" and rows[0].remote_addr == "198.51.100.20"
    # the window closes: the next sign-in anywhere writes the summary
    with session_factory() as s:
        s.execute(update(LoginThrottle).values(window_started_at=utcnow() - timedelta(minutes=16)))
        s.commit()
    assert _client(app, "192.0.2.1").login("guard").status_code == 302
    with session_factory() as s:
        summary = s.scalars(
            select(AuditLog).where(AuditLog.action == "login_failed_repeated")
        ).one()
        assert summary.username == "manager" and summary.target_type == "operator"
        assert summary.after["failures"] == 14 and summary.after["refused"] == 6
        assert summary.after["addresses"] == [f"198.51.100.{n + 20}" for n in range(3)]
        total = len(s.scalars(select(AuditLog).where(AuditLog.action.like("login%"))).all())
    assert total == 3  # login_failed, login_failed_repeated, the guard's login


def test_an_auditor_opening_the_log_sees_closed_windows(
    app: Flask, site: Site, session_factory
) -> None:
    auditor = _client(app, "192.0.2.2")
    auditor.login("auditor")
    client = _client(app, "198.51.100.40")
    for _ in range(3):
        client.login("=not-a-user", "wrong password 12345")
    with session_factory() as s:
        s.execute(update(LoginThrottle).values(window_started_at=utcnow() - timedelta(minutes=16)))
        s.commit()
    page = auditor.client.get("/audit/?action=login_failed").text
    assert "login_failed_repeated" in page


def _fresh_pg_database() -> tuple[str, Callable[[], None]]:
    import os
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    pg = os.environ.get("NYUTAI_TEST_PG_URL")
    if not pg:
        pytest.skip("no PostgreSQL server (NYUTAI_TEST_PG_URL unset; scripts/test starts one)")
    name = f"nyutai_throttle_{secrets.token_hex(4)}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(pg).set(database=name).render_as_string(hide_password=False), drop


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_concurrent_failures_from_two_processes_are_all_counted(backend: str, db_url: str) -> None:
    """Two web processes (two apps, each with its own engine) count the same name at once:
    no count is lost and the first failure is audited exactly once."""
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    from tests.web.conftest import seed_site
    from web import create_app

    drop: Callable[[], None] = lambda: None  # noqa: E731
    if backend == "postgresql":
        db_url, drop = _fresh_pg_database()
        upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        with factory() as s:
            seed_site(s)
            s.commit()
        apps = [
            create_app(
                test_config={
                    "SECRET_KEY": f"process-{n}-" + "z" * 40,
                    "NYUTAI_DATABASE_URL": db_url,
                }
            )
            for n in range(2)
        ]
        clients = []
        for n in range(8):
            client = apps[n % 2].test_client()
            client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 100}"
            clients.append(Auth(client))

        def attempt(auth: Auth) -> list[int]:
            return [auth.login("manager", "wrong password 12345").status_code for _ in range(2)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [s for result in pool.map(attempt, clients) for s in result]
        assert statuses == [401] * 16
        with factory() as s:
            row = s.get(LoginThrottle, "name:manager")
            assert row is not None and row.failures == 16 and row.window_failures == 15
            assert sorted(row.window_detail) == sorted(f"198.51.100.{n + 100}" for n in range(8))
            first = s.scalars(select(AuditLog).where(AuditLog.action == "login_failed")).all()
            assert len(first) == 1
    finally:
        engine.dispose()
        drop()
