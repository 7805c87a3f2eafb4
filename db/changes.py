"""The change feed: every write to a table a door decision reads records a ``changes`` row.

Recorded centrally, by SQLAlchemy session events installed once for every Session of the
process (web views, CLI, scheduler jobs, db helpers), so no writer can forget:

- ``after_flush``: the rows the flush inserted, updated (with a real change) or deleted;
- ``do_orm_execute``: ORM bulk ``update()``/``delete()`` statements, whose target rows are
  selected with the statement's own WHERE clause before it runs.

The rows go in through the flush's own connection, so they commit (or roll back) with the
change. On PostgreSQL a ``NOTIFY nyutai_changes`` in the same transaction (its payload
the writing controller's id, empty for the web, the CLI and jobs) wakes the other
controllers at commit; on SQLite they poll. ``version`` is the feed's position: on SQLite
writers are serialized, so versions commit in order; on PostgreSQL a later version can
commit first, which the reader handles by re-reading the gaps it saw for a while
(controller.feed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.orm import ORMExecuteState, Session

from db.models import Area, Authorization, Change, Credential, Door, Person, SiteSetting, Training
from db.models import Presence as PresenceRow
from db.models import Visit as VisitRow
from db.types import utcnow

CHANNEL = "nyutai_changes"

# table -> the attribute naming the person whose decision facts the row feeds
TRACKED: dict[str, str | None] = {
    Person.__tablename__: "id",
    Credential.__tablename__: "person_id",
    Training.__tablename__: "person_id",
    Authorization.__tablename__: "person_id",
    VisitRow.__tablename__: "visitor_id",
    Area.__tablename__: None,
    Door.__tablename__: None,
    SiteSetting.__tablename__: None,
    # who is inside: areas may span controllers, each learns the others' crossings here
    PresenceRow.__tablename__: "person_id",
}


def _row(obj: Any) -> dict[str, Any] | None:
    table = getattr(obj, "__tablename__", None)
    if table not in TRACKED:
        return None
    person_attr = TRACKED[table]
    row_id = getattr(obj, "id", None)
    return {
        "table_name": table,
        "row_id": row_id if isinstance(row_id, int) else None,
        "person_id": getattr(obj, person_attr, None) if person_attr else None,
    }


def _write(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    now = utcnow()
    origin = session.info.get("controller")  # a controller's recorder names itself
    for r in rows:
        r["changed_at"] = now
        r["origin"] = origin
    conn = session.connection()
    conn.execute(insert(Change), rows)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, notify_payload(origin)))


def notify_payload(origin: str | None, areas: Iterable[int] | None = None) -> str:
    """A NOTIFY names the writer, so that a controller's feed need not wake for its own
    commits (it reads them with the next round anyway). The NOTIFY of a batch's presence
    (db.presence) names its areas too (``c1|3,4``): a controller with no door in them need
    not wake either (controller.feed). Any other change in the same commit sends its own
    NOTIFY without areas, which wakes every other controller."""
    if areas is None:
        return origin or ""
    return f"{origin or ''}|{','.join(str(a) for a in sorted(set(areas)))}"


def notify_source(payload: str) -> tuple[str, frozenset[int] | None]:
    """The writer and, for a presence-only commit, its areas (None: it may concern anyone)."""
    origin, bar, areas = payload.partition("|")
    if not bar:
        return origin, None
    try:
        return origin, frozenset(int(a) for a in areas.split(",") if a)
    except ValueError:  # not ours to read: wake, as for any other writer
        return origin, None


def record(
    session: Session, table: str, person_ids: set[int], areas: Mapping[int, int] | None = None
) -> None:
    """Record changes written with Core statements, which the session events do not see
    (the recorder's set-based presence writes): one row per person, with the one area its
    change concerned when ``areas`` names it (db.presence ``only_area``)."""
    areas = areas or {}
    _write(
        session,
        [
            {"table_name": table, "row_id": None, "person_id": p, "area_id": areas.get(p)}
            for p in sorted(person_ids)
        ],
    )


def _after_flush(session: Session, _ctx: Any) -> None:
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        if (r := _row(obj)) is not None:
            rows.append(r)
    for obj in session.dirty:
        if (r := _row(obj)) is not None and session.is_modified(obj, include_collections=False):
            rows.append(r)
    for obj in session.deleted:
        if (r := _row(obj)) is not None:
            rows.append(r)
    _write(session, rows)


def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if table is None or name not in TRACKED:
        return
    person_attr = TRACKED[name]
    cols = [table.c.id] if "id" in table.c else []
    if person_attr:
        cols.append(table.c[person_attr])
    if not cols:
        _write(state.session, [{"table_name": name, "row_id": None, "person_id": None}])
        return
    q = select(*cols)
    where = state.statement.whereclause  # type: ignore[attr-defined]
    if where is not None:
        q = q.where(where)
    rows = [
        {
            "table_name": name,
            "row_id": r[0] if "id" in table.c else None,
            "person_id": r[-1] if person_attr else None,
        }
        for r in state.session.connection().execute(q)
    ]
    _write(state.session, rows)


KEEP_DAYS = 7


def prune(session: Session, before: datetime) -> int:
    """Delete the changes recorded before ``before``, always keeping the newest one (the
    feed's position, and on SQLite the highest version, which must never be handed out
    again). A controller whose memory is older than what is kept reads everything again
    (controller.feed, controller.memory_cache); one that runs reads the feed within a
    second, so only a controller stopped for ``KEEP_DAYS`` meets that."""
    newest = session.scalar(select(func.max(Change.version)))
    if newest is None:
        return 0
    result = session.execute(
        delete(Change).where(Change.changed_at < before, Change.version < newest)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def install() -> None:
    """Idempotent: listen on every Session of this process."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _bulk)


install()
