"""An authorization row made without a state waits for approval: it lets nobody in.

Every console and CLI path sets the state; this guards the one written by hand (a script,
a future importer) from granting access by default (issue 12, four eyes).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from controller.facts import load_person_facts
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Area, Authorization, AuthorizationState, Person
from domain.config import load_config
from nyutai import DEMO_SITE
from nyutai.demo import seed_people


def test_an_authorization_without_a_state_is_pending_and_grants_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(url)
    cfg = load_config(DEMO_SITE, data_dir=tmp_path)
    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as s:
        seed_people(s, cfg)
        newcomer = Person(name="新人 一郎", kind="staff")
        s.add(newcomer)
        s.flush()
        area = s.scalars(select(Area)).first()
        assert area is not None
        s.add(Authorization(person_id=newcomer.id, area_id=area.id))
        s.flush()
        row = s.scalars(select(Authorization).where(Authorization.person_id == newcomer.id)).one()
        assert row.state == AuthorizationState.PENDING
        _person, authorizations, _visit = load_person_facts(s, newcomer.id, area.id)
        assert authorizations == ()  # the door sees no authorization for the newcomer
