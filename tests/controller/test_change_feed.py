"""A change made in the web console (or by a db helper) reaches the door within a second.

The controller decides from memory; these tests write through the real web views (the same
app, the same database) and then present the card again and again until the door refuses,
measuring from the moment the web's commit returned. Both on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from controller.daemon import Controller
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Area, Authorization, Change, Credential, Training
from db.types import utcnow
from domain.config import load_config
from hardware.sim import SimBackend
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, seed_people
from tests.controller.conftest import Site, _card
from tests.web.conftest import pass_second_factor
from web import create_app
from web.accounts import create_operator
from web.totp import store_enrolment

PASSWORD = "a long demo password 1"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
WITHIN_SECONDS = 1.0


@pytest.fixture(params=["sqlite", "postgresql"])
def any_site(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[Site]:
    url = db_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    yield from _started_site(url, tmp_path)


@pytest.fixture
def pg_site(pg_url: str, tmp_path: Path) -> Iterator[Site]:
    yield from _started_site(pg_url, tmp_path)


def _started_site(url: str, tmp_path: Path) -> Iterator[Site]:
    """The demo site's people and a started controller on ``url``."""
    if not url.startswith("sqlite"):
        upgrade(url)
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    cfg = replace(cfg, database=replace(cfg.database, url=url))
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        pin = seed_people(s, cfg)
    backend = SimBackend()
    ctl = Controller(cfg, session_factory=factory, backend=backend)
    ctl.start()
    try:
        yield Site(cfg, ctl, backend, factory, pin)
    finally:
        ctl.stop()
        engine.dispose()


def login(site: Site) -> tuple[FlaskClient, str]:
    client = create_app(site.cfg).test_client()
    seed = pyotp.random_base32()
    with session_scope(site.sessions) as s:  # a manager signs in with a second factor
        op = create_operator(s, "manager", "manager", PASSWORD, "Manager")
        store_enrolment(s, op.id, seed, client.application.config["SECRET_KEY"], utcnow())
    token = CSRF.search(client.get("/login").get_data(as_text=True))
    assert token
    response = client.post(
        "/login", data={"username": "manager", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    response = pass_second_factor(client, response, "manager", seed)
    assert response.status_code in (302, 303)
    page = client.get("/people/").get_data(as_text=True)
    token = CSRF.search(page)
    assert token
    return client, token.group(1)


def _raw_tap(site: Site, who: str) -> dict[str, Any]:
    """A presentation at the door, without waiting for the feed (that is what is measured)."""
    tech, cid = DEMO_CARDS[who]
    result: dict[str, Any] = site.call(lambda: site.ctl.on_card(_card("sr-in", tech, cid)))
    return result


def _seconds_until_refused(site: Site, committed_at: float, reason: str) -> float:
    deadline = committed_at + 5.0
    while True:
        result = _raw_tap(site, "yamada")
        if result.get("decision") == "denied":
            assert result["reason"] == reason
            return time.monotonic() - committed_at
        assert time.monotonic() < deadline, f"still {result} 5 s after the commit"
        time.sleep(0.02)


def _ids(s: Session) -> tuple[int, int, int]:
    cred = s.scalar(select(Credential).where(Credential.card_id == DEMO_CARDS["yamada"][1]))
    assert cred is not None and cred.person_id is not None
    area_id = s.scalar(select(Area.id).where(Area.code == "server-room"))
    auth_id = s.scalar(
        select(Authorization.id).where(
            Authorization.person_id == cred.person_id, Authorization.area_id == area_id
        )
    )
    assert auth_id is not None
    return cred.person_id, cred.id, auth_id


def _web_revoke(site: Site, client: FlaskClient, token: str) -> None:
    with session_scope(site.sessions) as s:
        _, _, auth_id = _ids(s)
    r = client.post(
        f"/authorizations/{auth_id}/revoke",
        data={"csrf_token": token, "confirm": "1", "reason": "異動"},
    )
    assert r.status_code in (302, 303)


def _web_lost(site: Site, client: FlaskClient, token: str) -> None:
    with session_scope(site.sessions) as s:
        _, cred_id, _ = _ids(s)
    r = client.post(
        f"/people/cards/{cred_id}/state",
        data={"csrf_token": token, "state": "lost", "reason": "紛失届"},
    )
    assert r.status_code in (302, 303)


def _web_deactivate(site: Site, client: FlaskClient, token: str) -> None:
    with session_scope(site.sessions) as s:
        person_id, _, _ = _ids(s)
    r = client.post(f"/people/{person_id}/active", data={"csrf_token": token, "active": "0"})
    assert r.status_code in (302, 303)


def _db_training_expired(site: Site, client: FlaskClient, token: str) -> None:
    # a correction of the training date by a db helper (an ORM bulk update): the feed sees
    # bulk statements as well as flushes
    with session_scope(site.sessions) as s:
        person_id, _, _ = _ids(s)
        s.execute(
            update(Training)
            .where(Training.person_id == person_id)
            .values(completed_on=date(2020, 4, 1))
        )


CHANGES: list[tuple[str, Callable[[Site, FlaskClient, str], None], str]] = [
    ("revocation", _web_revoke, "no_authorization"),
    ("lost card", _web_lost, "credential_lost"),
    ("deactivated person", _web_deactivate, "credential_inactive"),
    ("expired training", _db_training_expired, "training_expired"),
]


@pytest.mark.parametrize(("what", "change", "reason"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_change_reaches_the_door_within_a_second(
    any_site: Site,
    what: str,
    change: Callable[[Site, FlaskClient, str], None],
    reason: str,
) -> None:
    site = any_site
    client, token = login(site)
    site.ctl.catch_up()
    assert _raw_tap(site, "yamada")["decision"] == "granted"
    with session_scope(site.sessions) as s:
        before = s.scalar(select(Change.version).order_by(Change.version.desc()).limit(1)) or 0
    change(site, client, token)
    committed = time.monotonic()
    with session_scope(site.sessions) as s:  # the write recorded its change in the feed
        assert s.scalars(select(Change.table_name).where(Change.version > before)).all()
    took = _seconds_until_refused(site, committed, reason)
    assert took <= WITHIN_SECONDS, f"{what} took {took:.2f} s to reach the door"


def test_feed_gap_is_read_again(session_factory: sessionmaker[Session], site: Site) -> None:
    """A version committed after a later one (PostgreSQL) is not skipped: the feed asks for
    the gap until it appears."""
    feed = site.ctl.feed
    site.ctl.catch_up()
    snap = site.ctl.facts
    assert snap is not None
    with session_scope(session_factory) as s:
        top = s.scalar(select(Change.version).order_by(Change.version.desc()).limit(1)) or 0
        s.add(Change(version=top + 2, table_name="doors", row_id=None, changed_at=snap_time()))
    deadline = time.monotonic() + 2
    while site.ctl.facts is not None and site.ctl.facts.version < top + 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert top + 1 in feed.gaps
    with session_scope(session_factory) as s:
        s.add(Change(version=top + 1, table_name="doors", row_id=None, changed_at=snap_time()))
    deadline = time.monotonic() + 2
    while top + 1 in feed.gaps:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def snap_time() -> Any:
    from db.types import utcnow

    return utcnow()


def test_the_feed_sleeps_through_its_own_commits_but_wakes_for_others(pg_url: str) -> None:
    """On PostgreSQL every commit that records a change notifies; a controller's own
    (its presence, in a burst hundreds a second) wake no round of its own feed, the web's
    and other controllers' wake it at once."""
    import psycopg
    from sqlalchemy import make_url

    from controller.feed import ChangeFeed
    from db.changes import CHANNEL

    upgrade(pg_url)
    engine = make_engine(pg_url)
    feed = ChangeFeed(make_session_factory(engine), lambda: None, lambda _s: None)  # type: ignore[arg-type, return-value]
    feed.origin = "c1"
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with (
        psycopg.connect(dsn, autocommit=True) as listener,
        psycopg.connect(dsn, autocommit=True) as writer,
    ):
        listener.execute(f"LISTEN {CHANNEL}")

        def woken_after(payload: str) -> float:
            writer.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            start = time.monotonic()
            feed._wait_for_others(listener, 1.0)
            return time.monotonic() - start

        assert woken_after("c1") >= 0.9  # its own: it slept the whole wait
        assert woken_after("c2") < 0.5  # another controller
        assert woken_after("") < 0.5  # the web, the CLI, a job
        # presence in areas: only those with a door of this controller's matter here
        feed.areas = lambda: {1, 2}
        assert woken_after("c2|3,4") >= 0.9
        assert woken_after("c2|2,7") < 0.5
        assert woken_after("c1|1") >= 0.9  # its own, whatever the areas
        assert woken_after("c2|x") < 0.5  # unreadable: as any other writer's
    engine.dispose()


def test_a_feed_round_on_postgresql_opens_no_transaction(pg_site: Site) -> None:
    """READ COMMITTED reads what is committed statement by statement either way: the feed's
    rounds run in autocommit, without a BEGIN and a ROLLBACK round trip each."""
    import threading

    from sqlalchemy import event

    from db import changes

    engine = pg_site.sessions.kw["bind"]
    seen: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: Any, *_args: Any) -> None:
        if threading.current_thread().name == "change-feed":
            seen.append(conn.connection.driver_connection.autocommit)

    with session_scope(pg_site.sessions) as s:
        person = s.scalars(select(Training.person_id).limit(1)).one()
        s.info["controller"] = "another"
        changes.record(s, "presence", {person})  # another writer moved someone
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    event.remove(engine, "before_cursor_execute", record)
    assert len(seen) >= 2  # the changes read, the presence read
    assert all(seen)
