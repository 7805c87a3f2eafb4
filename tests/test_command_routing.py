"""Each command reaches the controller that owns its reader, door or alarm (db.commands.route);
a forgive reaches every controller with a door in the area; claims refuse a running owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.commands import CommandKind, enqueue
from db.controllers import DoorClaimed, register
from db.models import Alarm, Area, Command, Door
from db.types import utcnow


def _site(s: Session) -> tuple[int, int]:
    room, hall = Area(code="room", name="Room"), Area(code="hall", name="Hall")
    s.add_all([room, hall])
    s.flush()
    s.add_all(
        [
            Door(code="front", name="Front", area_id=room.id, entry_reader="f-in"),
            Door(
                code="back", name="Back", area_id=room.id, entry_reader="b-in", exit_reader="b-out"
            ),
            Door(code="hall", name="Hall", area_id=hall.id, entry_reader="h-in"),
        ]
    )
    s.flush()
    now = utcnow()
    register(s, "bldg-a", ["front", "hall"], now)
    register(s, "bldg-b", ["back"], now)
    return room.id, hall.id


def test_commands_go_to_the_owner(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        room, hall = _site(s)
        alarm = Alarm(kind="door_forced", raised_at=utcnow(), controller="bldg-b")
        s.add(alarm)
        s.flush()
        assert enqueue(s, CommandKind.TAP, {"reader": "b-out", "card": "01"}).controller == "bldg-b"
        assert enqueue(s, CommandKind.ENROL, {"reader": "f-in"}).controller == "bldg-a"
        assert (
            enqueue(s, CommandKind.CONTACT, {"door": "back", "open": True}).controller == "bldg-b"
        )
        ack = enqueue(s, CommandKind.ACK_ALARM, {"alarm_id": alarm.id, "comment": ""})
        assert ack.controller == "bldg-b"
        assert enqueue(s, CommandKind.TAP, {"reader": "nowhere", "card": "01"}).controller is None
        # a forgive in an area with doors on two controllers: one command for each
        first = enqueue(s, CommandKind.FORGIVE, {"person_id": 1, "area_id": room})
        forgives = s.scalars(select(Command).where(Command.kind == "forgive")).all()
        assert first.controller == "bldg-a"
        assert sorted(c.controller or "" for c in forgives) == ["bldg-a", "bldg-b"]
        only_hall = enqueue(s, CommandKind.FORGIVE, {"person_id": 1, "area_id": hall})
        assert only_hall.controller == "bldg-a"


def test_a_running_owner_keeps_its_door(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        _site(s)
        with pytest.raises(DoorClaimed) as err:
            register(s, "bldg-c", ["back"], utcnow())
        assert err.value.reason == "door_claimed" and err.value.owner == "bldg-b"
        assert "door_claimed" in str(err.value)
        s.rollback()
    with session_factory() as s:
        _site(s)
        # bldg-b silent for a minute (stopped): its door may be taken over
        later = utcnow() + timedelta(minutes=1)
        register(s, "bldg-a", ["front", "hall"], later)
        number, taken = register(s, "bldg-c", ["back"], later)
        assert taken == ["back"] and number == 3
        assert s.scalar(select(Door.controller).where(Door.code == "back")) == "bldg-c"
