"""The demo: a data directory with the demo site, sample people, and operators per role.

Sample people cover the rules a visitor to the demo wants to see: a trained, designated
staff member (card + PIN), one whose training expired 13 months ago, a visitor with an
escort and a declared laptop, and an unknown card to try.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.site import sync_site
from db.models import (
    Area,
    Authorization,
    AuthorizationState,
    Credential,
    Operator,
    Person,
    PersonKind,
    Role,
    Training,
    Visit,
    WebSession,
)
from db.types import utcnow
from domain.config import SiteConfig
from domain.pins import check_pin_strength, hash_pin
from nyutai import DEMO_SITE

DEMO_CARDS = {
    "yamada": ("felica", "012E4CD1A2B3C4D5"),
    "sato": ("felica", "012E4CD1A2B3C4D6"),
    "suzuki": ("felica", "012E4CD1A2B3C4D7"),
    "visitor": ("felica", "012E4CD1A2B3C4D8"),
}
UNKNOWN_CARD = "DEADBEEF00000001"


@dataclass
class DemoLogin:
    role: str
    username: str
    password: str
    totp_seed: str | None  # administrators and managers: their TOTP key, printed once


@dataclass
class DemoSecrets:
    """What the demo prints once: operator logins (with TOTP keys) and the sample PIN."""

    operators: list[DemoLogin]
    yamada_pin: str


def prepare_data_dir(data_dir: Path) -> Path:
    """Copy the demo site file into ``data_dir`` (once) and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    site = data_dir / "site.toml"
    if not site.exists():
        shutil.copyfile(DEMO_SITE, site)
    return site


def random_pin() -> str:
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(6))
        try:
            check_pin_strength(pin)
            return pin
        except ValueError:
            continue


def seed_demo(session: Session, cfg: SiteConfig) -> DemoSecrets | None:
    """Seed sample people and operators; None if the database was seeded before."""
    from web.security import read_or_create_secret

    if session.scalar(select(Person.id).limit(1)) is not None:
        return None
    pin = seed_people(session, cfg)
    # the console's key seals the TOTP seeds: the same file the web process reads
    key = read_or_create_secret(cfg.data_path(cfg.web.secret_key_file))
    return DemoSecrets(seed_operators(session, key), pin)


def seed_people(session: Session, cfg: SiteConfig) -> str:
    """Sample staff, a visitor and their cards; returns Yamada's PIN (shown once)."""
    sync_site(session, cfg)
    areas = {a.code: a for a in session.scalars(select(Area))}
    now = utcnow()
    today = now.astimezone(cfg.zone).date()  # training dates are the site's calendar days

    def staff(key: str, name: str, kana: str, emp: str, trained: date | None) -> Person:
        p = Person(
            kind=PersonKind.STAFF,
            name=name,
            name_kana=kana,
            organization="自社",
            employee_no=emp,
            designated=True,
        )
        session.add(p)
        session.flush()
        tech, card = DEMO_CARDS[key]
        session.add(Credential(person_id=p.id, technology=tech, card_id=card, label=emp))
        if trained is not None:
            session.add(
                Training(person_id=p.id, course="特定個人情報取扱研修", completed_on=trained)
            )
        return p

    def authorize(p: Person, area: str, purpose: str) -> None:
        session.add(
            Authorization(
                person_id=p.id,
                area_id=areas[area].id,
                default_purpose=purpose,
                state=AuthorizationState.APPROVED,
                approved_at=now,
            )
        )

    yamada = staff("yamada", "山田 太郎", "ヤマダ タロウ", "E0001", today - timedelta(days=60))
    sato = staff("sato", "佐藤 花子", "サトウ ハナコ", "E0002", today - timedelta(days=200))
    suzuki = staff("suzuki", "鈴木 一郎", "スズキ イチロウ", "E0003", today - timedelta(days=400))
    for p in (yamada, sato, suzuki):
        authorize(p, "server-room", "サーバ保守 / server maintenance")
    authorize(yamada, "mynumber-room", "マイナンバー処理業務 / My Number processing")
    authorize(suzuki, "mynumber-room", "マイナンバー処理業務 / My Number processing")
    pin = random_pin()
    session.flush()
    yamada_card = session.scalar(select(Credential).where(Credential.person_id == yamada.id))
    assert yamada_card is not None
    yamada_card.pin_hash = hash_pin(pin)

    visitor = Person(
        kind=PersonKind.VISITOR,
        name="高橋 健",
        name_kana="タカハシ ケン",
        organization="株式会社サンプル保守",
    )
    session.add(visitor)
    session.flush()
    tech, card = DEMO_CARDS["visitor"]
    start, end = now - timedelta(hours=1), now + timedelta(hours=8)
    badge = Credential(
        person_id=visitor.id,
        technology=tech,
        card_id=card,
        temporary=True,
        label="V-001",
        valid_from=start,
        valid_until=end,
    )
    session.add(badge)
    session.flush()
    session.add(
        Visit(
            visitor_id=visitor.id,
            area_id=areas["server-room"].id,
            purpose="サーバ定期保守 / scheduled server maintenance",
            host_id=yamada.id,
            escort_id=yamada.id,
            id_checked=True,
            id_kind="運転免許証",
            declared_devices=[{"kind": "maintenance-laptop", "serial": "SN-DEMO-1"}],
            expected_from=start,
            expected_until=end,
            badge_credential_id=badge.id,
            signed_in_at=now,
        )
    )
    session.flush()
    return pin


DEMO_OPERATORS = (
    (Role.ADMINISTRATOR, "admin", "管理者 / Administrator"),
    (Role.MANAGER, "manager", "保護責任者 / Manager"),
    (Role.MANAGER, "manager2", "副責任者 / Second manager"),
    (Role.GUARD, "guard", "警備員 / Guard"),
    (Role.AUDITOR, "auditor", "監査人 / Auditor"),
)
TOTP_ROLES = (Role.ADMINISTRATOR, Role.MANAGER)


def reset_demo_passwords(session: Session, secret_key: bytes) -> list[DemoLogin]:
    """Fresh random passwords (and TOTP keys for administrators and managers) for the demo's
    operators (``nyutai demo --reset-passwords``): the first start shows them once; this is
    the way back in. Whoever was signed in with the old password is signed out."""
    from db import throttle
    from web.accounts import hash_password
    from web.totp import new_seed, store_enrolment

    logins: list[DemoLogin] = []
    for role, username, _display in DEMO_OPERATORS:
        op = session.scalar(select(Operator).where(Operator.username == username))
        if op is None:
            continue
        password = secrets.token_urlsafe(12)
        op.password_hash = hash_password(password)
        throttle.forget_name(session, username)  # a forgotten password's failures
        for ws in session.scalars(
            select(WebSession).where(
                WebSession.operator_id == op.id, WebSession.revoked_at.is_(None)
            )
        ):
            ws.revoked_at = utcnow()
        seed = None
        if role in TOTP_ROLES:
            seed = new_seed()
            store_enrolment(session, op.id, seed, secret_key, utcnow())
        logins.append(DemoLogin(role.value, username, password, seed))
    session.flush()
    return logins


def seed_operators(session: Session, secret_key: bytes) -> list[DemoLogin]:
    """One operator per role and a second manager (four eyes), each with a random password;
    administrators and managers are enrolled with a random TOTP key so the demo needs no
    enrolment step (a real site's managers enrol at their first sign-in)."""
    from web.accounts import create_operator
    from web.totp import new_seed, store_enrolment

    logins: list[DemoLogin] = []
    for role, username, display in DEMO_OPERATORS:
        password = secrets.token_urlsafe(12)
        op = create_operator(session, username, role.value, password, display)
        seed = None
        if role in TOTP_ROLES:
            seed = new_seed()
            store_enrolment(session, op.id, seed, secret_key, utcnow())
        logins.append(DemoLogin(role.value, username, password, seed))
    session.flush()
    return logins
