"""Writing who is inside: a batch's final presence per (person, area), as a set.

Several controllers write presence at once (areas may span controllers), so rows are
upserted, and every person whose presence changed gets a change row for the other
controllers' feeds (db.changes), in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, delete, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db import bulk, changes
from db.models import Change
from db.models import Presence as PresenceRow
from db.types import utcnow

TABLE = cast(Table, PresenceRow.__table__)
CHANGES = cast(Table, Change.__table__)
ROW_COLUMNS = ("person_id", "area_id", "entered_at", "event_id", "escort_person_id", "visit_id")

Key = tuple[int, int]  # (person_id, area_id)
NOTIFY_AREAS_MAX = 64


def write(s: Session, final: Mapping[Key, Mapping[str, Any] | None], wipe: set[int]) -> None:
    """``final``: each (person, area) the batch touched, with its row (inside) or None (not
    inside); ``wipe``: people out of every area (a guard's forgive), apart from ``final``'s
    rows."""
    gone = sorted(k for k, v in final.items() if v is None)
    rows = [dict(v) for _k, v in sorted(final.items()) if v is not None]
    people = {k[0] for k in final} | wipe
    if s.connection().dialect.name == "postgresql":
        # a wipe's areas are not known here: it wakes every controller (as do many areas:
        # a NOTIFY's payload is bounded)
        touched = {k[1] for k in final}
        areas = None if wipe or len(touched) > NOTIFY_AREAS_MAX else touched
        _write_postgresql(s, wipe, gone, rows, people, areas)
    else:
        _write_generic(s, wipe, gone, rows, people)


def _write_generic(
    s: Session, wipe: set[int], gone: list[Key], rows: list[dict[str, Any]], people: set[int]
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
    changes.record(s, PresenceRow.__tablename__, people)


def _write_postgresql(
    s: Session,
    wipe: set[int],
    gone: list[Key],
    rows: list[dict[str, Any]],
    people: set[int],
    areas: set[int] | None,
) -> None:
    """One statement, one round trip: the deletes, the upsert, the change rows and the
    feed's NOTIFY. A row is touched by one part only (``gone`` and ``rows`` are disjoint and
    the wipe spares ``rows``): when one statement changes a row twice, PostgreSQL does not
    say which change wins."""
    conn = s.connection()
    dialect = conn.dialect
    up = bulk.unnest(TABLE, ROW_COLUMNS, dialect)
    feed = bulk.unnest(CHANGES, ("person_id",), dialect)
    (now,) = bulk.processors(CHANGES, ("changed_at",), dialect)
    params = (
        *up.arrays(rows),
        sorted(wipe),
        [k[0] for k in gone],
        [k[1] for k in gone],
        PresenceRow.__tablename__,
        now(utcnow()) if now is not None else utcnow(),
        s.info.get("controller"),  # the change feed's origin: the controller skips its own
        *feed.arrays([{"person_id": p} for p in sorted(people)]),
        changes.notify_payload(s.info.get("controller"), areas),
    )
    conn.exec_driver_sql(_postgresql_statement(up.sql, feed.sql), params)


@functools.cache
def _postgresql_statement(new: str, fed: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in ROW_COLUMNS[2:])
    return (
        f"WITH new AS (SELECT * FROM {new} AS n({', '.join(ROW_COLUMNS)})), "
        "wiped AS (DELETE FROM presence p WHERE p.person_id = ANY(%s::INTEGER[]) "
        "AND NOT EXISTS (SELECT 1 FROM new WHERE new.person_id = p.person_id "
        "AND new.area_id = p.area_id)), "
        "gone AS (DELETE FROM presence p USING unnest(%s::INTEGER[], %s::INTEGER[]) "
        "AS g(person_id, area_id) WHERE p.person_id = g.person_id AND p.area_id = g.area_id), "
        f"upserted AS (INSERT INTO presence ({', '.join(ROW_COLUMNS)}) SELECT * FROM new "
        f"ON CONFLICT (person_id, area_id) DO UPDATE SET {updates}), "
        "fed AS (INSERT INTO changes (table_name, person_id, changed_at, origin) "
        "SELECT %s::VARCHAR, person_id, %s::TIMESTAMP, %s::VARCHAR "
        f"FROM {fed} AS f(person_id)) "
        f"SELECT pg_notify('{changes.CHANNEL}', %s)"
    )
