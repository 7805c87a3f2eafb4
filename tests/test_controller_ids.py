"""Event ids of several controllers: one range each, and readers that follow the log by id
(first-entry notifications) see every controller's new rows, whatever order they come in."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.controllers import id_range, ids_between, number_of, range_heads, register
from db.models import Event
from db.types import utcnow


def _event(s: Session, event_id: int, controller: str, seq: int) -> None:
    s.add(
        Event(
            id=event_id,
            controller=controller,
            seq=seq,
            occurred_at=utcnow(),
            kind="presentation",
            decision="granted",
            reason="granted",
        )  # fmt: skip
    )
    s.flush()


def test_a_reader_by_id_sees_each_controllers_new_rows(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        assert register(s, "bldg-a", [], utcnow())[0] == 1
        assert register(s, "bldg-b", [], utcnow())[0] == 2
        lo_b, _ = id_range(2)
        assert number_of(lo_b + 5) == 2 and number_of(5) == 1
        _event(s, 1, "bldg-a", 1)
        _event(s, lo_b + 1, "bldg-b", 1)
        upper = range_heads(s)
        assert upper == {1: 1, 2: lo_b + 1}
        seen = set(s.scalars(select(Event.id).where(ids_between({}, upper))))
        assert seen == {1, lo_b + 1}
        cursor = dict(upper)
        # bldg-a writes again after bldg-b: a smaller id than the newest seen, still new
        _event(s, 2, "bldg-a", 2)
        fresh = set(s.scalars(select(Event.id).where(ids_between(cursor, range_heads(s)))))
        assert fresh == {2}
        assert not list(s.scalars(select(Event.id).where(ids_between(range_heads(s), {}))))
