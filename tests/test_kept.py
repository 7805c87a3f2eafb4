"""The rows the records name are kept (db.kept), on SQLite and a real PostgreSQL.

The events, presence and alarms name people, cards, doors, areas, visits and photos by id
without foreign keys: a record is never refused, and the database itself refuses to delete
(or renumber) what a record may name, from any client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from controller.recorder import EVENT_COLUMNS, PresenceEnter, Recorder, Work
from db.engine import make_engine, make_session_factory, session_scope
from db.kept import KEPT_TABLES
from db.migrate import upgrade
from db.models import Area, Credential, Door, Event, Person, Presence, Snapshot, Visit

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
MODELS: dict[str, Any] = {
    "people": Person,
    "credentials": Credential,
    "doors": Door,
    "areas": Area,
    "visits": Visit,
    "snapshots": Snapshot,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url")
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _one_of_each(engine: Engine) -> dict[str, int]:
    with session_scope(make_session_factory(engine)) as s:
        person = Person(name="山田 太郎", designated=True)
        area = Area(code="server-room", name="サーバ室")
        s.add_all([person, area])
        s.flush()
        photo = Snapshot(taken_at=T0, camera="cam", path="p.jpg", sha256="0" * 64)
        rows: dict[str, Any] = {
            "people": person,
            "areas": area,
            "credentials": Credential(person_id=person.id, technology="felica", card_id="01"),
            "doors": Door(code="d1", name="扉", area_id=area.id),
            "snapshots": photo,
            "visits": Visit(
                visitor_id=person.id,
                area_id=area.id,
                purpose="保守",
                expected_from=T0,
                expected_until=T0 + timedelta(hours=1),
            ),
        }
        s.add_all(rows.values())
        s.flush()
        return {table: row.id for table, row in rows.items()}


def test_the_rows_a_record_may_name_are_never_deleted_or_renumbered(engine: Engine) -> None:
    assert set(MODELS) == set(KEPT_TABLES)
    ids = _one_of_each(engine)
    for table, model in MODELS.items():
        for statement in (
            delete(model).where(model.id == ids[table]),
            update(model).where(model.id == ids[table]).values(id=ids[table] + 1000),
        ):
            with engine.connect() as conn, pytest.raises(IntegrityError) as refused:
                conn.execute(statement)
            assert f"nyutai: {table} rows are kept for the records" in str(refused.value)
            if engine.dialect.name == "postgresql":
                assert refused.value.orig.sqlstate == "23001"  # type: ignore[union-attr]
    with Session(engine) as s:
        for table, model in MODELS.items():
            assert s.get(model, ids[table]) is not None, table
        # anything but the id still changes: a person is retired, a card reported lost
        s.execute(update(Person).values(active=False))
        s.execute(update(Credential).values(state="lost"))
        s.commit()
        assert s.scalar(select(Person.active)) is False


def test_truncate_is_refused_on_postgresql(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    _one_of_each(engine)
    for table in KEPT_TABLES:
        with engine.connect() as conn, pytest.raises(DBAPIError, match="kept for the records"):
            conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Person)) == 1
    engine.dispose()


def test_a_record_naming_rows_the_database_lacks_is_written(engine: Engine, tmp_path: Path) -> None:
    """A controller's memory older than its database (a database restored from a backup)
    names a person, a card and an area the database does not have: the batch is written, as
    decided, not refused into the journal with every other presentation in it."""
    ids = _one_of_each(engine)
    factory = make_session_factory(engine)
    recorder = Recorder(factory, tmp_path / "journal", post=lambda fn: fn())
    recorder.controller_id = "c1"
    work = Work()
    missing = {"person_id": 900_001, "credential_id": 900_002, "area_id": 900_003}
    known = {
        "person_id": ids["people"],
        "credential_id": ids["credentials"],
        "area_id": ids["areas"],
    }
    for i, named in enumerate((known, missing)):
        row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
        row.update(
            id=1 + i, controller="c1", seq=1 + i, prev_hash="0" * 64, hash=f"{i:064x}",
            occurred_at=T0, kind="presentation", decision="granted", reason="ok",
            visitor=False, door_id=ids["doors"], **named,
        )  # fmt: skip
        work.rows.append(row)
    work.ops = [
        PresenceEnter(ids["areas"], ids["people"], T0, 1),
        PresenceEnter(missing["area_id"], missing["person_id"], T0, 2),
    ]
    recorder._commit([work])  # noqa: SLF001 - one step of the database thread
    recorder._drop_crossings()  # noqa: SLF001
    with Session(engine) as s:
        assert s.scalars(select(Event.person_id).order_by(Event.seq)).all() == [
            ids["people"],
            missing["person_id"],
        ]
        inside = {(r.person_id, r.area_id) for r in s.scalars(select(Presence))}
    assert inside == {(ids["people"], ids["areas"]), (missing["person_id"], missing["area_id"])}
