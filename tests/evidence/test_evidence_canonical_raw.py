"""verify's fast path (driver values, no SQLAlchemy result types) hashes exactly the bytes the
typed canonical form gives, on SQLite and on PostgreSQL, for awkward values too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from db.chain import canonical_audit, canonical_event, chain_hash
from db.engine import make_engine, make_session_factory
from db.eventlog import append_audit, append_event
from db.migrate import upgrade
from db.models import AuditLog, Event
from db.verify import LogResult, _Walker, verify_all

T = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
DETAILS = [
    None,
    {"n": 1, "b": [1, 2.5, None, True], "ä": '名前\u3000"q"\\', "a": {"z": 1, "c": "x"}},
    {},
    {"big": 2**62, "f": 1e-7, "neg": -0.5},
]


def _fill(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        for i, d in enumerate(DETAILS * 3):
            append_event(
                s,
                Event(
                    # whole seconds, microseconds and a time just before midnight
                    occurred_at=T + timedelta(seconds=i * 3601, microseconds=(i % 3) * 999_999),
                    kind="presentation",
                    decision="granted" if i % 2 else "denied",
                    reason="granted" if i % 2 else "unknown_card",
                    reader="sr-in",
                    direction="in",
                    visitor=bool(i % 2),
                    raw_card_id=None if i % 4 == 0 else f"0102{i:04X}",
                    purpose='会議, "quoted" 100%s %(x)s' if i % 5 == 0 else None,  # % marks
                    detail=d,
                ),
            )
            append_audit(
                s,
                AuditLog(occurred_at=T + timedelta(microseconds=i), action=f"a.{i}", after=d),
            )
        s.commit()


def _check(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        for log, model, typed in (
            ("events", Event, canonical_event),
            ("audit", AuditLog, canonical_audit),
        ):
            w = _Walker(s, log, LogResult(log), 20)
            assert w.raw  # the fast path is the one in use on this dialect
            fast = {int(r.seq): w.row_hash(r) for r in w.rows(1)}
            w.raw = False  # the typed path, for comparison
            slow = {int(r.seq): w.row_hash(r) for r in w.rows(1)}
            stored = {int(a): b for a, b in s.execute(select(model.seq, model.hash))}
            assert fast == slow == stored
            assert len(fast) == len(DETAILS) * 3
            # and the ORM's canonical form agrees byte for byte
            for row in s.scalars(select(model).order_by(model.seq)):
                assert chain_hash(row.prev_hash or "", typed(row)) == row.hash
        assert verify_all(s, None).ok


def test_fast_path_equals_typed_path_sqlite(session_factory: sessionmaker[Session]) -> None:
    _fill(session_factory)
    _check(session_factory)


def test_fast_path_sees_a_change(session_factory: sessionmaker[Session]) -> None:
    _fill(session_factory)
    with session_factory.begin() as s:
        s.execute(text("UPDATE events SET detail='{\"n\": 2}' WHERE seq=2"))
    with session_factory() as s:
        res = verify_all(s, None)
    assert not res.ok and res.first is not None and res.first.seq == 2


@pytest.fixture
def pg_factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(pg_url)
    eng = make_engine(pg_url)
    yield make_session_factory(eng)
    eng.dispose()


def test_fast_path_equals_typed_path_postgres(pg_factory: sessionmaker[Session]) -> None:
    _fill(pg_factory)
    _check(pg_factory)


def test_the_controllers_dict_hasher_gives_the_canonical_hash() -> None:
    """The controller chains its rows with ``dict_hasher`` (a template, no sorted dict):
    the hash must be ``canonical``'s, or verification fails on every row it wrote."""
    from datetime import timezone
    from itertools import product

    from db.chain import EVENT_FIELDS, canonical_dict, dict_hasher
    from db.models import Decision
    from domain.reasons import Reason

    jst = timezone(timedelta(hours=9))
    hasher = dict_hasher(Event, EVENT_FIELDS)
    columns = [c.key for c in Event.__table__.columns]
    checked = 0
    for i, (detail, decision, when) in enumerate(
        product(DETAILS, [Decision.GRANTED, "denied", None], [T, T.astimezone(jst), None])
    ):
        row = dict.fromkeys(columns)
        row.update(
            seq=i + 1,
            occurred_at=when,
            kind="presentation",
            decision=decision,
            reason=Reason.UNKNOWN_CARD if i % 2 else None,  # an enum member, or nothing
            reader="sr-in" if i % 3 else 7,  # an int given for a string column
            visitor=bool(i % 2) if i % 4 else None,
            person_id=i if i % 5 else True,  # a bool given for an integer column
            escort_event_id=2**62 + i,
            purpose='会議, "quoted" 100%s %(x)s\u2028' if i % 2 else None,
            detail=detail,
        )
        prev = f"{i:064x}"
        assert hasher(prev, row) == chain_hash(prev, canonical_dict(Event, row, EVENT_FIELDS))
        checked += 1
    assert checked == len(DETAILS) * 9
