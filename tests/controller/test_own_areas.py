"""A controller loads at start only the presence of its own areas (those with a door of it).

The demo site split in two: controller ``main`` keeps the server room's door, ``bldg-b`` runs
the My Number room's two doors. Someone inside each room before ``main`` starts: ``main``
knows who is in the server room and nothing of the My Number room.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controller.daemon import Controller
from db.engine import session_scope
from db.models import Area, Person, Presence
from db.types import utcnow
from domain.config import load_config
from hardware.sim import SimBackend
from nyutai import DEMO_SITE
from nyutai.demo import seed_people


def test_a_controller_loads_the_presence_of_its_own_areas_only(
    tmp_path: Path, session_factory: sessionmaker[Session], db_url: str
) -> None:
    whole = load_config(DEMO_SITE, data_dir=tmp_path)
    doors = {
        code: dataclasses.replace(d, controller="bldg-b") if d.area == "mynumber-room" else d
        for code, d in whole.doors.items()
    }
    whole = dataclasses.replace(
        whole, database=dataclasses.replace(whole.database, url=db_url), doors=doors
    )
    with session_scope(session_factory) as s:
        seed_people(s, whole)
        area = {a.code: a.id for a in s.scalars(select(Area))}
        a, b = s.scalars(select(Person.id).order_by(Person.id).limit(2)).all()
        s.add(Presence(person_id=a, area_id=area["server-room"], entered_at=utcnow()))
        s.add(Presence(person_id=b, area_id=area["mynumber-room"], entered_at=utcnow()))

    ctl = Controller(
        whole.for_controller("main"), session_factory=session_factory, backend=SimBackend()
    )
    ctl.start()
    try:
        assert sorted(ctl.cfg.doors) == ["server-room-door"]
        assert [o.person_id for o in ctl.occupancy.occupants(area["server-room"])] == [a]
        # the My Number room is bldg-b's: not loaded here
        assert ctl.occupancy.occupants(area["mynumber-room"]) == []
        assert not ctl.occupancy.inside(b, area["mynumber-room"])
    finally:
        ctl.stop()
