"""Issue 12, defect 9: the smaller findings of the outside review.

- wrong current passwords on /account are throttled like sign-in;
- an administrator changing their own password gives the current one;
- common passwords (and ones made of the user or site name) are refused;
- a guard cannot read a staff card's number on the badge enrolment page;
- issuing a second visitor badge returns the first;
- an id too large for the database is a 404, not a 500.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from db.commands import CommandKind, enqueue
from db.models import Command, CommandState, Credential, Operator, Visit
from db.types import utcnow
from tests.web.conftest import PASSWORD, Auth, Site
from tests.web.test_web_visitors import _form

NEW = "a brand new passphrase"


def _can_sign_in(app: Flask, username: str, password: str) -> bool:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.200"
    return Auth(client).login(username, password).status_code == 302


def test_wrong_current_passwords_on_the_account_page_are_throttled(
    app: Flask, site: Site, session_factory
) -> None:
    me = Auth(app.test_client())
    me.login("guard")
    for _ in range(5):
        me.post("/account", {"current": "guess guess guess", "new": NEW, "again": NEW}, "/account")
    # the sixth try, even with the right password, waits
    resp = me.post("/account", {"current": PASSWORD, "new": NEW, "again": NEW}, "/account")
    assert resp.status_code == 429
    assert not _can_sign_in(app, "guard", NEW) and _can_sign_in(app, "guard", PASSWORD)


def test_an_administrator_gives_the_current_password_for_their_own(
    app: Flask, site: Site, session_factory
) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    with session_factory() as s:
        me = s.scalar(select(Operator.id).where(Operator.username == "administrator"))
    url = f"/admin/operators/{me}/password"
    admin.post(url, {"password": NEW}, page="/admin/")
    admin.post(url, {"password": NEW, "current": "not my password"}, page="/admin/")
    assert not _can_sign_in(app, "administrator", NEW)
    admin.post(url, {"password": NEW, "current": PASSWORD}, page="/admin/")
    assert _can_sign_in(app, "administrator", NEW)


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password1234!",
        "P@ssw0rd2024!",
        "qwertyuiop12",
        "1qaz2wsx3edc",
        "iloveyou2025",
        "123456789012",
        "passwordpassword",
        "administrator1",  # the user name
        "kanri-nyutai-01",  # the site's name
    ],
)
def test_common_and_guessable_passwords_are_refused(password: str) -> None:
    from web.accounts import password_problem

    assert password_problem(password, "administrator", site_name="kanri-nyutai") is not None


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "桜が咲く頃に会いましょう", "vT7#qLm2!xRb9"]
)
def test_good_passwords_pass(password: str) -> None:
    from web.accounts import password_problem

    assert password_problem(password, "administrator", site_name="kanri-nyutai") is None


def test_the_common_password_list_ships_with_the_package() -> None:
    from domain.passwords import common_passwords

    words = common_passwords()
    assert len(words) >= 2000 and "password" in words and "qwerty" in words


def test_the_web_refuses_a_common_password(app: Flask, site: Site, session_factory) -> None:
    admin = Auth(app.test_client())
    admin.login("administrator")
    admin.post(
        "/admin/operators",
        {"username": "newguard", "role": "guard", "password": "password1234"},
        page="/admin/",
    )
    with session_factory() as s:
        assert s.scalar(select(Operator).where(Operator.username == "newguard")) is None


def _visit(auth: Auth, site: Site, session_factory) -> int:  # type: ignore[no-untyped-def]
    auth.post("/visitors/", _form(site, device_kind_1=""), page="/visitors/")
    with session_factory() as s:
        return max(v.id for v in s.scalars(select(Visit)))


def test_a_guard_cannot_read_a_staff_card_on_the_badge_page(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    staff_card = "0102030405060708"
    auth.login("guard")
    vid = _visit(auth, site, session_factory)
    # a manager's enrolment (people page), read by the controller
    with session_factory() as s:
        manager = s.scalar(select(Operator.id).where(Operator.username == "manager"))
        theirs = enqueue(s, CommandKind.ENROL, {"reader": "sr-in", "timeout": 30}, manager)
        theirs.state, theirs.result = (
            CommandState.DONE,
            {
                "technology": "felica",
                "card_id": staff_card,
            },
        )
        s.commit()
        theirs_id = theirs.id
    resp = auth.client.get(f"/visitors/{vid}/badge/{theirs_id}")
    assert resp.status_code == 404 and staff_card not in resp.text
    # the guard's own enrolment, where someone presents a staff card
    wait_url = auth.post(
        f"/visitors/{vid}/badge/present", {"reader": "sr-in"}, page="/visitors/"
    ).headers["Location"]
    with session_factory() as s:
        mine = s.scalars(select(Command).order_by(Command.id.desc())).first()
        assert mine is not None
        mine.state, mine.processed_at = CommandState.DONE, utcnow()
        mine.result = {"technology": "felica", "card_id": staff_card}
        s.commit()
    page = auth.client.get(wait_url).text
    assert staff_card not in page and 'data-state="refused"' in page


def test_a_second_badge_returns_the_first(
    app: Flask, site: Site, auth: Auth, session_factory
) -> None:
    auth.login("guard")
    vid = _visit(auth, site, session_factory)
    for card in ("0A0B0C0D0E0F1011", "0A0B0C0D0E0F1012"):
        auth.post(
            f"/visitors/{vid}/badge", {"technology": "felica", "card_id": card}, page="/visitors/"
        )
    with session_factory() as s:
        cards = {
            c.card_id: c.state for c in s.scalars(select(Credential).where(Credential.temporary))
        }
        assert s.get(Visit, vid).badge.card_id == "0A0B0C0D0E0F1012"
    assert cards == {"0A0B0C0D0E0F1011": "returned", "0A0B0C0D0E0F1012": "active"}


@pytest.mark.parametrize(
    "path",
    [
        "/people/99999999999999999999999",
        "/people/2147483648",
        "/incidents/99999999999999999999999",
        "/people/99999999999999999999999/edit",
    ],
)
def test_ids_too_large_for_the_database_are_not_found(
    app: Flask, site: Site, auth: Auth, path: str
) -> None:
    auth.login("manager")
    assert auth.client.get(path).status_code == 404
