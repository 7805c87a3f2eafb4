"""Fixtures for the web console: an app on a migrated SQLite file, seeded site, logins.

CSRF stays ON in these tests: every POST carries the token read from a rendered page,
the way a browser does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    Area,
    Authorization,
    AuthorizationState,
    Credential,
    Door,
    Operator,
    OperatorMfa,
    Person,
    Training,
)
from db.types import utcnow
from web import create_app
from web.accounts import hash_password
from web.totp import step_at, store_enrolment

PASSWORD = "correct horse battery staple"
ROLES = ("administrator", "manager", "guard", "auditor")
SECRET_KEY = "test-only-key-" + "x" * 40
# Administrators and managers must sign in with TOTP: the seeded ones are enrolled with these
# test-only seeds (base32), and Auth.login answers the second step with a real code.
TOTP_SEEDS = {
    "administrator": "ADMINADMINADMINADMINADMINADMIN22",
    "manager": "MANAGERMANAGERMANAGERMANAGERMANA",
    "manager2": "SECONDMANAGERSECONDMANAGERSECOND",
}


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Site:
    """Ids of the seeded rows tests refer to."""

    server_room: int
    mynumber_room: int
    sr_door: int
    mn_door: int
    tanaka: int  # designated, trained, authorized for the server room: may escort there
    suzuki: int  # designated, training 13 months old: may not escort
    sato: int  # not designated
    tanaka_card: int
    auth_tanaka: int


def seed_site(session: Session) -> Site:
    names = {
        "administrator": "管理 太郎",
        "manager": "責任 花子",
        "guard": "警備 次郎",
        "auditor": "監査 三郎",
    }
    for role in ROLES:  # one argon2 hash for all tests keeps the suite fast
        session.add(
            Operator(
                username=role, display_name=names[role], role=role, password_hash=_password_hash()
            )
        )
    # a second manager: four-eyes steps need someone other than the requester
    session.add(
        Operator(
            username="manager2",
            display_name="副責任 次子",
            role="manager",
            password_hash=_password_hash(),
        )
    )
    session.flush()
    for op in session.scalars(select(Operator).where(Operator.username.in_(TOTP_SEEDS))):
        enrol_totp(session, op.id, TOTP_SEEDS[op.username])
    sr = Area(
        code="server-room",
        name="サーバ室",
        name_en="Server room",
        permitted_devices=["maintenance-laptop"],
    )
    mn = Area(
        code="mynumber-room",
        name="マイナンバー処理室",
        name_en="My Number room",
        permitted_devices=[],
        escort_policy="named",
    )
    session.add_all([sr, mn])
    session.flush()
    d1 = Door(
        code="server-room-door",
        name="サーバ室 扉",
        area_id=sr.id,
        entry_reader="sr-in",
        exit_reader="sr-out",
        exit_button=True,
    )
    d2 = Door(
        code="mynumber-front",
        name="処理室 正面扉",
        area_id=mn.id,
        entry_reader="mn-front-in",
        exit_reader="mn-front-out",
        pin_required=True,
    )
    session.add_all([d1, d2])
    today = utcnow().date()
    tanaka = Person(name="田中 一郎", designated=True, employee_no="E001")
    suzuki = Person(name="鈴木 花子", designated=True, employee_no="E002")
    sato = Person(name="佐藤 次郎", designated=False, employee_no="E003")
    session.add_all([tanaka, suzuki, sato])
    session.flush()
    session.add_all(
        [
            Training(
                person_id=tanaka.id,
                course="特定個人情報研修",
                completed_on=today - timedelta(days=60),
            ),
            Training(
                person_id=suzuki.id,
                course="特定個人情報研修",
                completed_on=date(today.year - 1, today.month, 1) - timedelta(days=31),
            ),
        ]
    )
    auths = [
        Authorization(person_id=p.id, area_id=a.id, state=AuthorizationState.APPROVED)
        for p in (tanaka, suzuki, sato)
        for a in (sr, mn)
    ]
    session.add_all(auths)
    card = Credential(
        person_id=tanaka.id, technology="felica", card_id="0102030405060708", label="S-001"
    )
    session.add(card)
    session.flush()
    return Site(sr.id, mn.id, d1.id, d2.id, tanaka.id, suzuki.id, sato.id, card.id, auths[0].id)


def enrol_totp(
    session: Session, operator_id: int, seed: str, key: bytes | str = SECRET_KEY
) -> None:
    """Enrol a TOTP seed the way the enrolment page stores it (sealed with the app's key)."""
    store_enrolment(session, operator_id, seed, key, utcnow())


def totp_code(app: Flask, username: str, seed: str) -> str:
    """A real code for ``seed`` that the console has not seen yet.

    The console refuses a code of a time step already used (replay). Tests sign in more
    often than every 30 seconds, so when the three steps the console accepts now are used,
    the operator's last step is set back: the test stands in for the clock moving on."""
    factory = app.extensions["nyutai_sessions"]
    with factory() as s:
        op_id = s.scalar(select(Operator.id).where(Operator.username == username))
        row = s.get(OperatorMfa, op_id)
        assert row is not None, f"{username} has no second factor"
        # the current step or the next one: the console accepts one step either side of its
        # own clock, so a step boundary passing before the POST arrives does no harm
        now = step_at(utcnow())
        step = now if row.last_step is None else max(now, row.last_step + 1)
        if step > now + 1:
            row.last_step, step = now - 1, now
            s.commit()
    return str(pyotp.TOTP(seed).generate_otp(step))


def pass_second_factor(client: FlaskClient, resp: Any, username: str, seed: str) -> Any:
    """If ``resp`` (the password step) leads to the code page, give a right code there."""
    location = resp.headers.get("Location", "") if resp.status_code == 302 else ""
    if not location.startswith("/login/mfa"):
        return resp
    page = client.get(location).get_data(as_text=True)
    code = totp_code(client.application, username, seed)
    return client.post(location, data={"code": code, "csrf_token": csrf_from(page)})


def price_out(engine: Any, *settings: str) -> None:
    """Run ``SET <setting> = off`` on each new connection of ``engine`` (PostgreSQL plan
    tests: a sequential scan or sort that still shows in EXPLAIN had no index to avoid it)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _off(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            for name in settings:
                cur.execute(f"SET {name} = off")
        dbapi_conn.commit()


@pytest.fixture
def app(db_url: str, tmp_path: Any) -> Flask:
    return create_app(
        test_config={
            "SECRET_KEY": SECRET_KEY,
            "NYUTAI_DATABASE_URL": db_url,
            "NYUTAI_DEMO": True,
            "NYUTAI_DATA_DIR": tmp_path,
            "TESTING": False,  # keep the production error handling (no propagation)
            "NYUTAI_STREAM_SECONDS": 0.5,  # live streams end quickly (browsers reconnect)
        }
    )


@pytest.fixture
def site(session_factory: sessionmaker[Session]) -> Site:
    with session_factory() as s:
        result = seed_site(s)
        s.commit()
    return result


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Auth:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def token(self, path: str = "/login") -> str:
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def login(self, username: str, password: str = PASSWORD, seed: str | None = None) -> Any:
        """Sign in; an operator with a known TOTP seed also passes the second step."""
        token = self.token()
        resp = self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        seed = seed or TOTP_SEEDS.get(username)
        return pass_second_factor(self.client, resp, username, seed) if seed else resp

    def post(
        self, path: str, data: dict[str, Any] | None = None, page: str = "/dashboard", **kw: Any
    ) -> Any:
        """POST with the CSRF token taken from ``page`` (a page the operator can open)."""
        body = dict(data or {})
        body["csrf_token"] = self.token(page)
        return self.client.post(path, data=body, **kw)


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


@pytest.fixture
def data_dir(app: Flask, tmp_path: Any) -> Any:
    """A site config with a real data directory (snapshots, signing key) under tmp_path."""
    from domain.config import SiteConfig

    root = tmp_path / "data"
    root.mkdir()
    app.config["NYUTAI_SITE"] = SiteConfig(path=tmp_path / "site.toml", data_dir=root)
    return root


def report_page(client: FlaskClient, url: str, timeout: float = 60.0) -> str:
    """The monthly report page once its background build is done (the page reloads itself
    while it shows progress; a busy machine can take longer than the page's first wait)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        page = client.get(url).get_data(as_text=True)
        if 'id="report-progress"' not in page or time.monotonic() > deadline:
            return page
        time.sleep(0.2)
