"""The controller's set-based writes (db.presence, db.bulk) on SQLite and a real PostgreSQL.

On PostgreSQL a batch's presence is one statement (deletes, upsert, change rows, NOTIFY);
its events go in the same statement (a batch of crossings, written by the recorder in
autocommit: one round trip) or through one ``COPY`` (a batch with other operations). What they
store must be exactly what the row-by-row statements stored: the final presence of each
(person, area) in the batch's order, one change row per person with the writer's origin, and
events that read back equal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Connection, Table, event, func, make_url, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from controller.recorder import (
    EVENT_COLUMNS,
    PresenceEnter,
    PresenceLeave,
    Recorder,
    Work,
    final_presence,
    write_presence,
)
from db import bulk, changes, presence
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Area, Change, Event, Person
from db.models import Presence as PresenceRow

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    url = request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url")
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def _people_and_areas(
    factory: sessionmaker[Session], people: int, areas: int
) -> tuple[list[int], list[int]]:
    with session_scope(factory) as s:
        ps = [Person(name=f"p{i}", designated=True) for i in range(people)]
        ars = [Area(code=f"a{i}", name=f"a{i}") for i in range(areas)]
        s.add_all(ps + ars)
        s.flush()
        return [p.id for p in ps], [a.id for a in ars]


Op = PresenceEnter | PresenceLeave
Inside = dict[tuple[int, int], datetime]


def _model(before: Inside, ops: list[Op]) -> Inside:
    """Who is inside after ``ops``, applied one at a time (the meaning the set write keeps)."""
    inside = dict(before)
    for op in ops:
        if isinstance(op, PresenceEnter):
            inside[(op.person_id, op.area_id)] = op.entered_at
        elif op.area_id is None:
            inside = {k: v for k, v in inside.items() if k[0] != op.person_id}
        else:
            inside.pop((op.person_id, op.area_id), None)
    return inside


def _inside(factory: sessionmaker[Session]) -> Inside:
    with factory() as s:
        return {(r.person_id, r.area_id): r.entered_at for r in s.scalars(select(PresenceRow))}


def _batch(s: Session, ops: list[Op], origin: str) -> None:
    s.info["controller"] = origin
    write_presence(s, ops)
    s.commit()


def test_the_batch_leaves_each_person_where_its_last_op_put_them(
    factory: sessionmaker[Session],
) -> None:
    people, areas = _people_and_areas(factory, 6, 3)
    p, a = people, areas
    at = [T0 + timedelta(minutes=i) for i in range(20)]
    first = [PresenceEnter(a[0], p[0], at[0], 1), PresenceEnter(a[1], p[0], at[0], 2),
             PresenceEnter(a[0], p[1], at[1], 3), PresenceEnter(a[2], p[2], at[1], 4)]  # fmt: skip
    second = [
        PresenceLeave(p[0], None),  # a forgive: out of every area ...
        PresenceEnter(a[1], p[0], at[5], 5),  # ... then in again: the wipe spares this row
        PresenceEnter(a[0], p[1], at[6], 6),  # already inside: the row is updated
        PresenceLeave(p[1], a[0]),  # ... and then leaves
        PresenceEnter(a[2], p[3], at[7], 7),
        PresenceLeave(p[3], None),  # in, then forgiven: a row both "gone" and wiped
        PresenceLeave(p[2], a[2]),
        PresenceEnter(a[2], p[2], at[8], 8),  # out and in again in one batch
        PresenceLeave(p[4], a[1]),  # not inside: nothing to delete
    ]
    with factory() as s:
        _batch(s, first, "c1")
    with factory() as s:
        _batch(s, second, "c1")
    assert _inside(factory) == _model(_model({}, first), second)
    assert _inside(factory)[(p[0], a[1])] == at[5]
    with factory() as s:
        row = s.scalars(select(PresenceRow).where(PresenceRow.person_id == p[2])).one()
        assert (row.event_id, row.entered_at) == (8, at[8])


def test_random_batches_agree_with_one_op_at_a_time(factory: sessionmaker[Session]) -> None:
    people, areas = _people_and_areas(factory, 8, 3)
    rng = random.Random(7)
    expected: Inside = {}
    for b in range(15):
        ops: list[Op] = []
        for i in range(rng.randint(1, 12)):
            person, area = rng.choice(people), rng.choice(areas)
            roll = rng.random()
            if roll < 0.55:
                ops.append(PresenceEnter(area, person, T0 + timedelta(seconds=100 * b + i), None))
            elif roll < 0.9:
                ops.append(PresenceLeave(person, area))
            else:
                ops.append(PresenceLeave(person, None))
        expected = _model(expected, ops)
        with factory() as s:
            _batch(s, ops, "c1")
        assert _inside(factory) == expected, f"after batch {b}"


def test_each_batch_records_one_change_per_person_with_its_origin(
    factory: sessionmaker[Session],
) -> None:
    people, areas = _people_and_areas(factory, 3, 2)
    with factory() as s:
        start = s.scalar(select(Change.version).order_by(Change.version.desc()).limit(1)) or 0
    ops: list[Op] = [
        PresenceEnter(areas[0], people[0], T0, None),
        PresenceEnter(areas[1], people[0], T0, None),
        PresenceLeave(people[1], areas[0]),
        PresenceLeave(people[2], None),
    ]
    with factory() as s:
        _batch(s, ops, "bldg-a")
    with factory() as s:
        rows = s.execute(
            select(Change.table_name, Change.person_id, Change.origin, Change.changed_at).where(
                Change.version > start
            )
        ).all()
    assert sorted(r.person_id for r in rows) == sorted(people)
    assert {(r.table_name, r.origin) for r in rows} == {("presence", "bldg-a")}
    assert all(r.changed_at.tzinfo is not None for r in rows)
    with factory() as s:
        got = s.execute(select(Change.person_id, Change.area_id).where(Change.version > start))
        area_of = {person: area for person, area in got}
    # the one area a person's change concerned; none for two areas or every area (a wipe)
    assert area_of == {people[0]: None, people[1]: areas[0], people[2]: None}


def test_the_feed_passes_on_others_presence_only_in_its_areas(
    factory: sessionmaker[Session],
) -> None:
    """Another controller's crossings in areas without a door of ours are not read again
    (nor their people's presence asked for): they decide nothing here."""
    from controller.feed import ChangeFeed
    from controller.memory import load_snapshot

    people, areas = _people_and_areas(factory, 6, 2)
    with factory() as s:
        box = [load_snapshot(s, ZoneInfo("Asia/Tokyo"))]
    feed = ChangeFeed(factory, lambda: box[0], lambda snap: box.__setitem__(0, snap))
    feed.origin = "c1"
    feed.areas = lambda: {areas[0]}
    passed: set[int] = set()
    feed.on_presence = lambda moved, _s, _t: passed.update(moved)
    with factory() as s:
        _batch(s, [PresenceEnter(areas[0], people[0], T0, None)], "c2")  # ours: passed on
        _batch(s, [PresenceEnter(areas[1], people[1], T0, None)], "c2")  # not ours
        _batch(s, [PresenceLeave(people[2], None)], "c2")  # every area: ours too
        _batch(s, [PresenceEnter(areas[0], people[3], T0, None)], "c1")  # our own
        _batch(  # two areas, one of them ours
            s,
            [
                PresenceEnter(areas[0], people[4], T0, None),
                PresenceEnter(areas[1], people[4], T0, None),
            ],
            "c2",
        )
    with factory() as s:
        s.info["controller"] = "c2"
        changes.record(s, "presence", {people[5]})  # a writer that names no area
        s.commit()
    assert feed.step() > 0
    assert passed == {people[0], people[2], people[4], people[5]}


def test_a_presence_batch_wakes_the_other_controllers_on_postgresql(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    people, areas = _people_and_areas(factory, 2, 3)
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN nyutai_changes")
        with factory() as s:
            _batch(s, [PresenceEnter(areas[0], people[0], T0, None)], "c1")
        with factory() as s:
            _batch(
                s,
                [PresenceEnter(areas[2], people[1], T0, None), PresenceLeave(people[0], areas[0])],
                "c1",
            )
        with factory() as s:
            _batch(s, [PresenceLeave(people[1], None)], "c2")  # out of every area
        got = list(listener.notifies(timeout=5, stop_after=3))
    engine.dispose()
    # named after the writer (its own feed need not wake for it) and the areas it touched
    # (a controller with no door in them need not wake either); a wipe's areas are unknown
    assert [(n.channel, n.payload) for n in got] == [
        ("nyutai_changes", f"c1|{areas[0]}"),
        ("nyutai_changes", f"c1|{min(areas[0], areas[2])},{max(areas[0], areas[2])}"),
        ("nyutai_changes", "c2"),
    ]


def _event(i: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    row.update(
        id=10_000 + i, controller="c1", seq=i + 1, prev_hash="0" * 64, hash=f"{i:064x}",
        occurred_at=T0 + timedelta(seconds=i, microseconds=123_456), kind="card",
        decision="granted", reason="ok", visitor=False,
    )  # fmt: skip
    row.update(extra)
    return row


def _copy(conn: Connection, rows: list[dict[str, Any]]) -> None:
    bulk.copy(conn, cast(Table, Event.__table__), rows)


def _with_presence(conn: Connection, rows: list[dict[str, Any]]) -> None:
    presence.write_postgresql(conn, {}, set(), "c1", rows)


WRITERS = [_copy, _with_presence]


@pytest.mark.parametrize("write", WRITERS, ids=["copy", "one-statement"])
def test_events_written_in_one_statement_read_back_as_written(pg_url: str, write: Any) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    rows = [
        _event(0, detail={"pin": "masked", "n": [1, 2]}, purpose="点検 'quoted'", visitor=True),
        _event(1),  # every optional column None, detail too
        _event(2, raw_card_id="0123456789ABCDEF", direction="in", escort_event_id=2**40),
        _event(3, occurred_at=T0, detail={"s": '\\ " \n'}),  # no microseconds; escapes
    ]
    with engine.begin() as conn:
        write(conn, rows)
    with engine.begin() as conn:  # the same rows as an insert of the ORM's would store them
        ref = [dict(r, id=r["id"] + 100, seq=r["seq"] + 100) for r in rows]
        conn.execute(Event.__table__.insert(), ref)
    with Session(engine) as s:
        got = {e.id: e for e in s.scalars(select(Event))}
        # a missing detail is JSON null, as an insert stores it, not SQL NULL
        stored = {i: d for i, d in s.execute(text("SELECT id, detail::text FROM events"))}
    engine.dispose()
    for r in rows:
        e = got[r["id"]]
        for key in EVENT_COLUMNS:
            assert getattr(e, key) == r[key], key
        assert stored[r["id"]] == stored[r["id"] + 100]
    assert stored[rows[1]["id"]] == "null"


@pytest.mark.parametrize("write", WRITERS, ids=["copy", "one-statement"])
def test_a_row_that_breaks_the_chain_is_an_integrity_error(pg_url: str, write: Any) -> None:
    """The recorder keeps a batch in its journal when another writer holds its chain
    positions: it must see the driver's unique violation as SQLAlchemy's IntegrityError."""
    upgrade(pg_url)
    engine = make_engine(pg_url)
    events = cast(Table, Event.__table__)
    with engine.begin() as conn:
        write(conn, [_event(0)])
    second = _event(1)
    second["seq"] = 1  # the seq the first row holds
    with pytest.raises(IntegrityError, match="seq"), engine.begin() as conn:
        write(conn, [second])
    with engine.connect() as conn:  # the pool's connection is usable again
        assert conn.scalar(select(func.count()).select_from(events)) == 1
    engine.dispose()


def _crossings(people: list[int], area: int, first: int) -> Work:
    work = Work()
    work.rows = [
        _event(first + i, person_id=p, id=20_000 + first + i) for i, p in enumerate(people)
    ]
    work.ops = [PresenceEnter(area, p, T0, 20_000 + first + i) for i, p in enumerate(people)]
    return work


def test_the_recorder_writes_a_batch_of_crossings_in_one_autocommit_statement(
    pg_url: str, tmp_path: Any
) -> None:
    """Events, presence, change rows and the NOTIFY of a batch of crossings in one statement
    outside any transaction block, on the writer's own connection: one round trip per batch,
    not five (BEGIN, COPY's two, presence, COMMIT)."""
    upgrade(pg_url)
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    people, areas = _people_and_areas(factory, 4, 1)
    seen: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement.split()[0], conn.connection.driver_connection.autocommit))

    recorder = Recorder(factory, tmp_path / "journal", post=lambda fn: fn())
    recorder.controller_id = "c1"
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN nyutai_changes")
        recorder._commit([_crossings(people[:2], areas[0], 0)])  # noqa: SLF001 - one step
        recorder._commit([_crossings(people[2:], areas[0], 2)])  # noqa: SLF001
        got = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    # the connection is set up once (its plan cache mode), then one statement per batch
    assert seen == [("SET", True), ("WITH", True), ("WITH", True)]
    assert got == [f"c1|{areas[0]}"] * 2
    assert set(_inside(factory)) == {(p, areas[0]) for p in people}
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 4
        origins = s.scalars(select(Change.origin).where(Change.table_name == "presence")).all()
    assert origins == ["c1"] * 4
    writer = recorder._crossings  # noqa: SLF001
    assert writer is not None
    assert writer.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_generic_plan"
    backend = writer.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    recorder._drop_crossings()  # noqa: SLF001
    # its generic plans stay its own: the connection is closed, not handed back to the pool
    with engine.connect() as conn:
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline
            and conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE pid = {int(backend)}"
            ).scalar()
        ):
            time.sleep(0.05)
        left = conn.exec_driver_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE pid = {int(backend)}"
        ).scalar()
        assert left == 0
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    engine.dispose()


def test_the_writers_rested_connection_is_pinged_and_replaced(
    pg_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that dropped the writer's connection while it rested (a restart, a failover at
    night) costs a ping and a new connection, not a failed commit and a journal detour."""
    import controller.recorder as recorder_module

    upgrade(pg_url)
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    people, areas = _people_and_areas(factory, 2, 1)
    recorder = Recorder(factory, tmp_path / "journal", post=lambda fn: fn())
    recorder.controller_id = "c1"
    recorder._commit([_crossings(people[:1], areas[0], 0)])  # noqa: SLF001
    first = recorder._crossings  # noqa: SLF001
    assert first is not None
    backend = first.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
        admin.commit()
    monkeypatch.setattr(recorder_module, "CROSSINGS_PING_AFTER_SECONDS", 0.0)
    recorder._commit([_crossings(people[1:], areas[0], 1)])  # noqa: SLF001 - no error
    assert recorder._crossings is not None and recorder._crossings is not first  # noqa: SLF001
    assert set(_inside(factory)) == {(p, areas[0]) for p in people}
    recorder._drop_crossings()  # noqa: SLF001
    engine.dispose()


def test_final_presence_is_what_the_ops_leave_in_their_order() -> None:
    ops: list[Op] = [
        PresenceEnter(1, 7, T0, 1),
        PresenceEnter(2, 7, T0, 2),
        PresenceLeave(7, None),  # a forgive ends both ...
        PresenceEnter(2, 7, T0, 3),  # ... and a new entry stands
        PresenceLeave(8, 1),
    ]
    final, wipe = final_presence(ops)
    assert wipe == {7}
    assert final[(7, 1)] is None and final[(8, 1)] is None
    row = final[(7, 2)]
    assert row is not None and row["event_id"] == 3


def test_one_of_selects_the_rows_with_one_parameter_on_postgresql(
    factory: sessionmaker[Session],
) -> None:
    """The change feed asks for the presence of hundreds of people each round: on PostgreSQL
    one array parameter, so the text is the same for any count (prepared once)."""
    people, areas = _people_and_areas(factory, 40, 2)
    with factory() as s:
        _batch(s, [PresenceEnter(areas[i % 2], p, T0, None) for i, p in enumerate(people)], "c1")
    with factory() as s:
        dialect = s.get_bind().dialect

        def query(ids: list[int]) -> Any:
            return select(PresenceRow.person_id).where(
                bulk.one_of(PresenceRow.person_id, ids, dialect),
                bulk.one_of(PresenceRow.area_id, [areas[0]], dialect),
            )

        few, many = people[:1], people[::3] + [10**9]  # one not there
        got = set(s.scalars(query(many)))
        assert got == {p for i, p in enumerate(people) if i % 3 == 0 and i % 2 == 0}
        assert set(s.scalars(query(few))) == {people[0]}
        texts = {str(query(ids).compile(dialect=dialect)) for ids in (few, many)}
    if dialect.name == "postgresql":
        assert len(texts) == 1
        assert "ANY" in texts.pop()
