"""Event log filters, keyset pagination and streamed CSV, shared by the pages and the API.

Order is (occurred_at DESC, id DESC), served by ix_events_occurred_id; a page boundary is
the (occurred_at, id) pair of its last row, so paging stays stable and cheap over millions of
rows while new events arrive (no OFFSET).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Select, and_, false, or_, select, type_coerce
from sqlalchemy.orm import Session, aliased, joinedload
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from db.models import Alarm, Area, Decision, Door, Event, Person
from db.search import matching_people
from domain.config import CODE_CHARS
from domain.csvsafe import SafeCsvWriter
from domain.reasons import Reason, sentence
from domain.words import TABLES, word
from domain.zones import zone_label
from web.ids import MAX_BIG_ID, MAX_ID, parse_id

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
EXPORT_BATCH = 1000
EXPORT_BATCH_CSV = 5000  # rows per keyset query and per chunk written to the response


class FilterError(ValueError):
    """A filter value could not be understood; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class EventFilter:
    since: datetime | None = None
    until: datetime | None = None
    area_id: int | None = None
    door_id: int | None = None
    person: str | None = None  # part of a name, or "#<id>"
    decision: str | None = None
    reason: str | None = None
    visitors_only: bool = False
    alarms_only: bool = False
    controller: str | None = None  # the controller that wrote the row (several on one DB)
    errors: list[str] = field(default_factory=list)


def _local_time(value: str, zone: ZoneInfo, name: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    raise FilterError(name, _("expected a date and time like 2026-04-01T09:00"))


def _int(value: str, name: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise FilterError(name, _("expected a number")) from None
    if n < 0:
        raise FilterError(name, _("expected a positive number"))
    if n > MAX_ID:  # the database cannot even compare it (OverflowError in SQLite)
        raise FilterError(name, _("no such id"))
    return n


def _controller_id(value: str) -> str:
    if len(value) > 64 or not set(value) <= CODE_CHARS:
        raise FilterError("controller", _("unknown value"))
    return value


def parse_filter(args: Mapping[str, str], zone: ZoneInfo) -> EventFilter:
    """Read filters from request arguments; a bad value is dropped and named in ``errors``."""
    f = EventFilter()
    steps = {
        "from": lambda v: setattr(f, "since", _local_time(v, zone, "from")),
        "to": lambda v: setattr(f, "until", _local_time(v, zone, "to")),
        "area": lambda v: setattr(f, "area_id", _int(v, "area")),
        "door": lambda v: setattr(f, "door_id", _int(v, "door")),
        "person": lambda v: setattr(f, "person", v.strip()[:200]),
        "decision": lambda v: setattr(f, "decision", Decision(v).value),
        "reason": lambda v: setattr(f, "reason", Reason(v).value),
        "controller": lambda v: setattr(f, "controller", _controller_id(v)),
    }
    for key, step in steps.items():
        value = (args.get(key) or "").strip()
        if not value:
            continue
        try:
            step(value)
        except FilterError as exc:
            f.errors.append(str(exc))
        except ValueError:
            f.errors.append(f"{key}: " + _("unknown value"))
    for key in ("after", "before"):  # page positions: a forged one is named, not ignored
        value = (args.get(key) or "").strip()
        if value and decode_cursor(value) is None:
            f.errors.append(f"{key}: " + _("unknown value"))
    f.visitors_only = args.get("visitors") in ("1", "on", "true")
    f.alarms_only = args.get("alarms") in ("1", "on", "true")
    return f


# A name part matching at most this many people becomes a list of ids read through
# ix_events_person_occurred (each person's newest rows, merged); more people than that are
# common enough in the log that walking the time index and testing each row finds a page
# within a few thousand rows.
FEW_PEOPLE = 1000


def _person_condition(session: Session, text: str) -> ColumnElement[bool]:
    if text.startswith("#") and (pid := parse_id(text[1:])) is not None:
        return Event.person_id == pid
    ids = list(session.scalars(matching_people(session, text).limit(FEW_PEOPLE + 1)))
    if len(ids) <= FEW_PEOPLE:
        return Event.person_id.in_(ids) if ids else false()
    # "+ 0" keeps the planner off the person index: the page comes from the time index
    return (Event.person_id + 0).in_(matching_people(session, text))


def filtered(f: EventFilter, session: Session) -> Select[Event]:
    q = select(Event)
    if f.since is not None:
        q = q.where(Event.occurred_at >= f.since)
    if f.until is not None:
        q = q.where(Event.occurred_at < f.until)
    if f.area_id is not None:
        q = q.where(Event.area_id == f.area_id)
    if f.door_id is not None:
        q = q.where(Event.door_id == f.door_id)
    if f.controller:
        q = q.where(Event.controller == f.controller)
    if f.decision:
        q = q.where(Event.decision == f.decision)
    if f.reason:
        q = q.where(Event.reason == f.reason)
    if f.visitors_only:
        q = q.where(Event.visitor.is_(True))
    if f.alarms_only:
        q = q.where(Event.id.in_(select(Alarm.event_id).where(Alarm.event_id.is_not(None))))
    if f.person:
        q = q.where(_person_condition(session, f.person))
    return q


def encode_cursor(ev: Event) -> str:
    return f"{int(ev.occurred_at.timestamp() * 1_000_000)}_{ev.id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    micros, _sep, ident = value.partition("_")
    row_id = parse_id(ident, MAX_BIG_ID)  # a forged id past 64 bits overflowed inside the query
    if row_id is None:
        return None
    try:
        t = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
        return t, row_id
    except (ValueError, OverflowError, OSError):
        return None


# The leading plain bound (occurred_at <= t) lets SQLite and PostgreSQL seek the
# (occurred_at, id) index instead of scanning: an OR alone is not a range they can use.
def _older_than(t: datetime, i: int) -> ColumnElement[bool]:
    return and_(Event.occurred_at <= t, or_(Event.occurred_at < t, Event.id < i))


def _newer_than(t: datetime, i: int) -> ColumnElement[bool]:
    return and_(Event.occurred_at >= t, or_(Event.occurred_at > t, Event.id > i))


@dataclass
class Page:
    rows: list[Event]
    next_cursor: str | None  # older rows
    prev_cursor: str | None  # newer rows


def page(
    session: Session,
    f: EventFilter,
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page, newest first. ``after``: rows older than that cursor; ``before``: newer."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    q = filtered(f, session).options(
        joinedload(Event.person), joinedload(Event.door), joinedload(Event.escort)
    )
    back = decode_cursor(before)
    fwd = decode_cursor(after)
    if back is not None:
        q = q.where(_newer_than(*back)).order_by(Event.occurred_at.asc(), Event.id.asc())
        rows = list(session.scalars(q.limit(size + 1)).unique())
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        return Page(
            rows,
            encode_cursor(rows[-1]) if rows else None,
            encode_cursor(rows[0]) if rows and more_newer else None,
        )
    if fwd is not None:
        q = q.where(_older_than(*fwd))
    q = q.order_by(Event.occurred_at.desc(), Event.id.desc())
    rows = list(session.scalars(q.limit(size + 1)).unique())
    more_older = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        encode_cursor(rows[-1]) if rows and more_older else None,
        encode_cursor(rows[0]) if rows and fwd is not None else None,
    )


def api_page(
    session: Session, f: EventFilter, after: str | None = None, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the JSON API from Core rows (no ORM object per row), newest first."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    who = aliased(Person)
    ev = Event
    q = (
        select(
            ev.id,
            ev.seq,
            ev.occurred_at,
            ev.kind,
            Door.code.label("door"),
            ev.area_id,
            ev.reader,
            ev.direction,
            ev.person_id,
            who.name.label("person"),
            ev.visitor,
            ev.decision,
            ev.reason,
            ev.purpose,
            ev.escort_person_id,
            ev.raw_card_id,
            ev.hash,
        )
        .outerjoin(Door, Door.id == ev.door_id)
        .outerjoin(who, who.id == ev.person_id)
    )
    where = filtered(f, session).whereclause
    if where is not None:
        q = q.where(where)
    if (fwd := decode_cursor(after)) is not None:
        q = q.where(_older_than(*fwd))
    # Core on the session's connection: no ORM result machinery for up to 500 rows
    q = q.order_by(ev.occurred_at.desc(), ev.id.desc()).limit(size + 1)
    rows = session.connection().execute(q).all()
    more = len(rows) > size
    rows = rows[:size]
    out = []
    for r in rows:
        d = r._asdict()
        d["occurred_at"] = d["occurred_at"].isoformat()
        out.append(d)
    last = rows[-1] if rows and more else None
    cursor = f"{int(last.occurred_at.timestamp() * 1_000_000)}_{last.id}" if last else None
    return out, cursor


def iterate(session: Session, f: EventFilter, batch: int = EXPORT_BATCH) -> Iterator[Event]:
    """Every matching event, newest first, fetched in keyset batches (constant memory)."""
    cursor: tuple[datetime, int] | None = None
    while True:
        q = filtered(f, session).options(
            joinedload(Event.person), joinedload(Event.door), joinedload(Event.escort)
        )
        if cursor is not None:
            q = q.where(_older_than(*cursor))
        rows = list(
            session.scalars(
                q.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(batch)
            ).unique()
        )
        if not rows:
            return
        yield from rows
        cursor = (rows[-1].occurred_at, rows[-1].id)
        session.expunge_all()  # keep the identity map from growing with the export


CSV_COLUMNS = (
    ("occurred_at", "時刻 ({zone})", "Time ({zone})"),  # the site's zone, named
    ("id", "イベントID", "Event id"),
    ("area", "管理区域", "Managed area"),
    ("door", "扉", "Door"),
    ("direction", "方向", "Direction"),
    ("person", "氏名", "Person"),
    ("visitor", "部外者", "Visitor"),
    ("decision", "判定", "Decision"),
    ("reason", "理由コード", "Reason code"),
    ("reason_text", "理由", "Reason"),
    ("purpose", "用件", "Purpose"),
    ("escort", "立会者", "Escort"),
    ("card", "カードID", "Card id"),
    ("hash", "ハッシュ", "Hash"),
    ("controller", "制御装置", "Controller"),  # the chain the row belongs to
)


def _csv_batches(
    session: Session, f: EventFilter, batch: int = EXPORT_BATCH
) -> Iterator[Sequence[Any]]:
    """Plain column tuples in batches of ``batch``, newest first: Core rows on the session's
    connection (no ORM objects), ``occurred_at`` as the driver gives it (see
    ``_LocalTimes``), so the export is fast and its memory does not grow with the rows."""
    who, escort = aliased(Person), aliased(Person)
    ev = Event
    cols = (
        select(
            ev.id,
            type_coerce(ev.occurred_at, NullType()).label("t"),
            ev.reader,
            ev.direction,
            ev.visitor,
            ev.decision,
            ev.reason,
            ev.purpose,
            ev.raw_card_id,
            ev.hash,
            ev.door_id,  # names from lookups built once (a few hundred doors and areas)
            who.name,
            escort.name,
            ev.area_id,
            ev.controller,
        )
        .outerjoin(who, who.id == ev.person_id)
        .outerjoin(escort, escort.id == ev.escort_person_id)
    )
    where = filtered(f, session).whereclause  # the same filters, on the events table itself
    if where is not None:
        cols = cols.where(where)
    # One query, read ``batch`` rows at a time: the database plans the whole range once
    # (PostgreSQL then joins the people in bulk) instead of re-seeking per batch, and memory
    # stays one batch.
    q = cols.order_by(ev.occurred_at.desc(), ev.id.desc())
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # a server-side cursor; read through the result, whose buffer holds the first row
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(q)
        try:
            yield from result.partitions(batch)
        finally:
            result.close()
        return
    # SQLite steps its cursor as rows are read: the driver's tuples straight from it, no
    # SQLAlchemy Row per row (the columns need no result processing: ints and strings, the
    # time coerced above, visitor read as true/false only)
    result = conn.execute(q)
    try:
        while rows := result.cursor.fetchmany(batch):
            yield rows
    finally:
        result.close()


class _LocalTimes:
    """Stored UTC times -> ``YYYY-MM-DD HH:MM:SS`` in ``zone``, with the zone's offset looked
    up once per UTC hour (an hour whose offset changes inside it is converted row by row)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.offsets: dict[Any, timedelta | None] = {}
        self.hours: dict[str, str] = {}  # "2026-08-31 18" (UTC) -> "2026-09-01 03" (local)

    def __call__(self, v: Any) -> str:
        if type(v) is datetime and v.tzinfo is None and v.year >= 1000:
            v = v.isoformat(" ")  # PostgreSQL's naive UTC: one C call, then as SQLite's text
        if type(v) is str and len(v) >= 19 and v[0] != "0":  # SQLite: "2026-08-31 18:00:29.1"
            prefix = self.hours.get(v[:13])
            if prefix is not None:  # the zone is whole hours off UTC now: only the hour moves
                return prefix + v[13:19]
            off = self.offsets.get(v[:13], _UNSET)
            if off is _UNSET:
                off = self._offset(v[:13], datetime.fromisoformat(v[:13] + ":00"))
                if off is not None and not off.total_seconds() % 3600:
                    local = datetime.fromisoformat(v[:13] + ":00") + off
                    self.hours[v[:13]] = local.isoformat(" ")[:13]
            if off is not None:
                return (datetime.fromisoformat(v[:19]) + off).isoformat(" ")
        t = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        if t.tzinfo is not None:
            t = t.astimezone(UTC).replace(tzinfo=None)
        t = t.replace(microsecond=0)  # strftime("%S") drops them too
        hour = t.replace(minute=0, second=0)
        off = self.offsets.get(hour, _UNSET)
        if off is _UNSET:
            off = self._offset(hour, hour)
        if off is None or t.year < 1000:  # a transition inside this hour; strftime's %Y
            return t.replace(tzinfo=UTC).astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")
        return (t + off).isoformat(" ")

    def _offset(self, key: Any, hour: datetime) -> timedelta | None:
        if len(self.offsets) > 10_000:  # bounded memory over long ranges
            self.offsets.clear()
            self.hours.clear()
        start = hour.replace(tzinfo=UTC).astimezone(self.zone).utcoffset()
        end = (hour + timedelta(hours=1)).replace(tzinfo=UTC).astimezone(self.zone)
        off = start if end.utcoffset() == start else None
        self.offsets[key] = off
        return off


_UNSET: Any = object()
_REASON = itemgetter(6)  # the reason code in a row of _csv_batches


def csv_stream(
    session: Session, f: EventFilter, locale: str, zone: ZoneInfo, batch: int = EXPORT_BATCH_CSV
) -> Iterator[str]:
    """UTF-8 CSV with a BOM (so Excel reads Japanese), one keyset batch of lines at a time."""
    buf = io.StringIO()
    w = SafeCsvWriter(buf)
    ja = locale.startswith("ja")
    label = zone_label(zone, datetime.now(UTC).year)
    w.writerow([(c[1] if ja else c[2]).format(zone=label) for c in CSV_COLUMNS])
    yield "\ufeff" + buf.getvalue()
    buf.seek(0)
    buf.truncate()
    # lookups built once, not per row: door names, reason sentences, local times
    yes = "はい" if ja else "yes"
    doors = dict(session.execute(select(Door.id, Door.name)).all())
    areas = dict(session.execute(select(Area.id, Area.name)).all())
    sentences: dict[str, str] = {}
    local = _LocalTimes(zone)
    # code -> word tables made once (``word`` per cell was a tenth of the export's time):
    # ``table.get(code, code) or ""`` is word()'s answer, the code itself when unknown
    directions = {c: word("direction", c, locale) for c in TABLES["direction"]}
    decisions = {c: word("decision", c, locale) for c in TABLES["decision"]}
    for rows in _csv_batches(session, f, batch):
        for code in {*map(_REASON, rows)} - sentences.keys():  # a few dozen codes in all
            sentences[code] = sentence(code, locale)
        out = [
            (
                local(occurred),
                ev_id,
                areas.get(area_id) or "",
                doors.get(door_id) or reader or "",
                directions.get(direction, direction) or "",
                person,  # None: an empty cell
                yes if visitor else "",
                decisions.get(decision, decision) or "",
                reason,
                sentences[reason],
                purpose,
                escort,
                card,
                digest,
                controller,
            )
            for (
                ev_id,
                occurred,
                reader,
                direction,
                visitor,
                decision,
                reason,
                purpose,
                card,
                digest,
                door_id,
                person,
                escort,
                area_id,
                controller,
            ) in rows
        ]
        w.writerows(out)  # every cell through domain.csvsafe (formula escaping)
        yield buf.getvalue()  # a large chunk per batch
        buf.seek(0)
        buf.truncate()
