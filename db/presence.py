"""Writing who is inside: a batch's final presence per (person, area), as a set.

Several controllers write presence at once (areas may span controllers), so rows are
upserted, and every person whose presence changed gets a change row for the other
controllers' feeds (db.changes), in the same transaction. On PostgreSQL a controller's group
commit of events and presence is one statement (``write_postgresql``): on a connection in
autocommit, one round trip instead of five (BEGIN, COPY's two, presence, COMMIT).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db import bulk, changes
from db.models import Change, Event
from db.models import Presence as PresenceRow
from db.types import utcnow

TABLE = cast(Table, PresenceRow.__table__)
CHANGES = cast(Table, Change.__table__)
EVENTS = cast(Table, Event.__table__)
ROW_COLUMNS = ("person_id", "area_id", "entered_at", "event_id", "escort_person_id", "visit_id")

Key = tuple[int, int]  # (person_id, area_id)
NOTIFY_AREAS_MAX = 64


def write(s: Session, final: Mapping[Key, Mapping[str, Any] | None], wipe: set[int]) -> None:
    """``final``: each (person, area) the batch touched, with its row (inside) or None (not
    inside); ``wipe``: people out of every area (a guard's forgive), apart from ``final``'s
    rows."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        write_postgresql(conn, final, wipe, s.info.get("controller"))
        return
    gone = sorted(k for k, v in final.items() if v is None)
    rows = [dict(v) for _k, v in sorted(final.items()) if v is not None]
    _write_generic(s, wipe, gone, rows, {k[0] for k in final} | wipe, only_area(final, wipe))


def only_area(final: Mapping[Key, Any], wipe: set[int]) -> dict[int, int]:
    """The one area each person's change concerned, for their change row (db.changes): a
    person whose change touched several areas, or every area (a wipe), has none, and so
    concerns every controller."""
    areas: dict[int, int | None] = {}
    for person, area in final:
        areas[person] = area if areas.get(person, area) == area else None
    return {p: a for p, a in areas.items() if a is not None and p not in wipe}


def _write_generic(
    s: Session,
    wipe: set[int],
    gone: list[Key],
    rows: list[dict[str, Any]],
    people: set[int],
    areas: Mapping[int, int],
) -> None:
    conn = s.connection()
    if wipe:
        conn.execute(delete(TABLE).where(TABLE.c.person_id.in_(sorted(wipe))))
    if gone:
        conn.execute(delete(TABLE).where(tuple_(TABLE.c.person_id, TABLE.c.area_id).in_(gone)))
    if rows:
        if conn.dialect.name == "sqlite":
            stmt = sqlite_insert(TABLE)
            stmt = stmt.on_conflict_do_update(
                index_elements=[TABLE.c.person_id, TABLE.c.area_id],
                set_={k: stmt.excluded[k] for k in ROW_COLUMNS[2:]},
            )
            conn.execute(stmt, rows)
        else:  # pragma: no cover - the two databases nyutai runs on have upserts
            keys = [(r["person_id"], r["area_id"]) for r in rows]
            conn.execute(delete(TABLE).where(tuple_(TABLE.c.person_id, TABLE.c.area_id).in_(keys)))
            conn.execute(TABLE.insert(), rows)
    changes.record(s, PresenceRow.__tablename__, people, areas)


def write_postgresql(
    conn: Connection,
    final: Mapping[Key, Mapping[str, Any] | None],
    wipe: set[int],
    origin: str | None,
    events: Sequence[Mapping[str, Any]] = (),
) -> None:
    """One statement: ``events`` (rows of every events column), the presence deletes, the
    upsert, the change rows (``origin``: the writing controller, whose feed skips its own)
    and the feed's NOTIFY (only when presence changed). A row is touched by one part only
    (``gone`` and ``rows`` are disjoint and the wipe spares ``rows``): when one statement
    changes a row twice, PostgreSQL does not say which change wins."""
    gone = sorted(k for k, v in final.items() if v is None)
    rows = [dict(v) for _k, v in sorted(final.items()) if v is not None]
    people = {k[0] for k in final} | wipe
    # a wipe's areas are not known here: it wakes every controller (as do many areas: a
    # NOTIFY's payload is bounded)
    touched = {k[1] for k in final}
    areas = None if wipe or len(touched) > NOTIFY_AREAS_MAX else touched
    dialect = conn.dialect
    ev = bulk.json_records(EVENTS, tuple(c.key for c in EVENTS.columns), dialect, "e")
    up = bulk.unnest(TABLE, ROW_COLUMNS, dialect)
    feed = bulk.unnest(CHANGES, ("person_id", "area_id"), dialect)
    areas_of = only_area(final, wipe)
    (now,) = bulk.processors(CHANGES, ("changed_at",), dialect)
    params = (
        ev.text(events),
        *up.arrays(rows),
        sorted(wipe),
        [k[0] for k in gone],
        [k[1] for k in gone],
        PresenceRow.__tablename__,
        now(utcnow()) if now is not None else utcnow(),
        origin,
        *feed.arrays([{"person_id": p, "area_id": areas_of.get(p)} for p in sorted(people)]),
        changes.notify_payload(origin, areas),
        bool(people),
    )
    conn.exec_driver_sql(
        _postgresql_statement(ev.columns, ev.source, ev.select, up.sql, feed.sql), params
    )


@functools.cache
def _postgresql_statement(
    event_columns: tuple[str, ...], events: str, event_values: str, new: str, fed: str
) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in ROW_COLUMNS[2:])
    return (
        f"WITH ev AS (INSERT INTO {EVENTS.name} ({', '.join(event_columns)}) "
        f"SELECT {event_values} FROM {events}), "
        f"new AS (SELECT * FROM {new} AS n({', '.join(ROW_COLUMNS)})), "
        "wiped AS (DELETE FROM presence p WHERE p.person_id = ANY(%s::INTEGER[]) "
        "AND NOT EXISTS (SELECT 1 FROM new WHERE new.person_id = p.person_id "
        "AND new.area_id = p.area_id)), "
        "gone AS (DELETE FROM presence p USING unnest(%s::INTEGER[], %s::INTEGER[]) "
        "AS g(person_id, area_id) WHERE p.person_id = g.person_id AND p.area_id = g.area_id), "
        f"upserted AS (INSERT INTO presence ({', '.join(ROW_COLUMNS)}) SELECT * FROM new "
        f"ON CONFLICT (person_id, area_id) DO UPDATE SET {updates}), "
        "fed AS (INSERT INTO changes (table_name, person_id, area_id, changed_at, origin) "
        "SELECT %s::VARCHAR, person_id, area_id, %s::TIMESTAMP, %s::VARCHAR "
        f"FROM {fed} AS f(person_id, area_id)) "
        f"SELECT pg_notify('{changes.CHANNEL}', %s) WHERE %s"
    )
