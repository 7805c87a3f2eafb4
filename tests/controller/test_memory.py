"""The controller's memory agrees with the database, before and after changes from the feed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from controller.facts import load_card, load_door
from controller.feed import ChangeFeed
from controller.memory import Snapshot, load_snapshot
from db.engine import session_scope
from db.models import Area, Authorization, Credential, CredentialState, Person, Training
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.demo import DEMO_CARDS, UNKNOWN_CARD, seed_people

TOKYO = ZoneInfo("Asia/Tokyo")


def _seeded(session_factory: sessionmaker[Session], db_url: str, tmp_path: Path) -> None:
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    cfg = replace(cfg, database=replace(cfg.database, url=db_url))
    from controller.site import sync_site

    with session_scope(session_factory) as s:
        seed_people(s, cfg)
        sync_site(s, cfg)


def _same(s: Session, snap: Snapshot, card: str, door: str = "server-room-door") -> None:
    policy = load_door(s, door, TOKYO)
    assert policy is not None and snap.door(door) == policy
    want = load_card(s, "felica", card, policy.area.id)
    got = snap.card("felica", card, policy.area.id)
    assert got.credential == want.credential
    assert got.authorizations == want.authorizations
    assert got.visit == want.visit
    if want.person is None:
        assert got.person is None
    else:  # memory keeps no names: a decision never reads them
        assert got.person == replace(want.person, name="")


def test_memory_gives_the_facts_the_database_gives(
    session_factory: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    _seeded(session_factory, db_url, tmp_path)
    with session_factory() as s:
        snap = load_snapshot(s, TOKYO)
        for _, card in DEMO_CARDS.values():
            _same(s, snap, card)
        _same(s, snap, UNKNOWN_CARD)


def test_changes_through_the_feed(
    session_factory: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    _seeded(session_factory, db_url, tmp_path)
    with session_factory() as s:
        box = [load_snapshot(s, TOKYO)]
    feed = ChangeFeed(session_factory, lambda: box[0], lambda snap: box.__setitem__(0, snap))
    yamada = DEMO_CARDS["yamada"][1]
    with session_scope(session_factory) as s:
        cred = s.scalar(select(Credential).where(Credential.card_id == yamada))
        assert cred is not None
        cred.card_id = "00AA00AA00AA00AA"  # a replacement card
        person = s.get(Person, cred.person_id)
        assert person is not None
        person.designated = False
        s.add(Training(person_id=person.id, course="再研修", completed_on=cred.created_at.date()))
        area_id = s.scalar(select(Area.id).where(Area.code == "server-room"))
        s.execute(delete(Authorization).where(Authorization.person_id == person.id))
        s.add(
            Authorization(
                person_id=person.id, area_id=area_id, default_purpose="保守", state="approved"
            )
        )
        sato = s.scalar(select(Credential).where(Credential.card_id == DEMO_CARDS["sato"][1]))
        assert sato is not None
        sato.state = CredentialState.LOST  # a card is retired, never deleted (db.kept)
    assert feed.step() > 0
    with session_factory() as s:
        for card in (yamada, "00AA00AA00AA00AA", DEMO_CARDS["sato"][1], DEMO_CARDS["suzuki"][1]):
            _same(s, box[0], card)
    assert box[0].card("felica", yamada, 1).credential is None  # the old card is gone
    assert feed.step() == 0  # nothing new: nothing applied twice
