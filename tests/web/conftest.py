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

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    Area,
    Authorization,
    AuthorizationState,
    Credential,
    Door,
    Operator,
    Person,
    Training,
)
from db.types import utcnow
from web import create_app
from web.accounts import hash_password

PASSWORD = "correct horse battery staple"
ROLES = ("administrator", "manager", "guard", "auditor")


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


@pytest.fixture
def app(db_url: str, tmp_path: Any) -> Flask:
    return create_app(
        test_config={
            "SECRET_KEY": "test-only-key-" + "x" * 40,
            "NYUTAI_DATABASE_URL": db_url,
            "NYUTAI_DEMO": True,
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

    def login(self, username: str, password: str = PASSWORD) -> Any:
        token = self.token()
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

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
