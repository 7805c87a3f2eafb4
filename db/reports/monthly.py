"""Section 10: the monthly handling-status report (特定個人情報等取扱状況報告書), as data.

``build_monthly_report`` gathers, per managed area and for one calendar month in the site's zone:
entries and exits per person, visits (purpose, escort, declared devices), denials by reason,
alarms and incidents with their handling, and who was still inside at each day's end; and,
site-wide, deletions and the signed checkpoint hashes with the signing public keys.
CSV and PDF renderings live beside this module. The report never carries My Number, PINs,
card ids, notes or event details: only the columns listed in the dataclasses below.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, delete, func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from db.chain import chain_log
from db.crossings import crossing, entry, event_area
from db.models import (
    Alarm,
    Area,
    Checkpoint,
    Decision,
    DeletionRecord,
    Direction,
    Door,
    Event,
    Incident,
    OccupancySnapshot,
    Operator,
    Person,
    PersonKind,
    Visit,
)
from db.settings import end_of_day
from db.types import utcnow
from domain.config import DEFAULT_CONTROLLER_ID
from domain.reasons import sentence


class ReportError(ValueError):
    """The report cannot be made as asked (bad month, unknown area)."""


@dataclass(frozen=True)
class PersonLine:
    person_id: int
    name: str
    kind: str
    organization: str
    entries: int
    exits: int


@dataclass(frozen=True)
class VisitLine:
    visit_id: int
    visitor: str
    organization: str
    purpose: str
    host: str
    escort: str
    devices: str
    expected_from: datetime
    expected_until: datetime
    signed_in_at: datetime | None
    signed_out_at: datetime | None
    entries: int


@dataclass(frozen=True)
class DenialLine:
    reason: str
    text_ja: str
    text_en: str
    count: int


@dataclass(frozen=True)
class AlarmLine:
    alarm_id: int
    kind: str
    text_ja: str
    raised_at: datetime
    place: str
    state: str
    acknowledged_at: datetime | None
    acknowledged_by: str
    comment: str
    cleared_at: datetime | None
    cleared_by: str


@dataclass(frozen=True)
class IncidentLine:
    incident_id: int
    kind: str
    opened_at: datetime
    state: str
    summary: str
    cause: str
    prevention: str
    closed_at: datetime | None
    closed_by: str
    evidence_events: int
    evidence_snapshots: int


@dataclass(frozen=True)
class InsideLine:
    day: date
    person_id: int
    name: str
    kind: str
    since: datetime


@dataclass(frozen=True)
class DeletionLine:
    record_id: int
    log: str
    from_seq: int
    to_seq: int
    from_time: datetime
    to_time: datetime
    row_count: int
    first_hash: str
    last_hash: str
    approved_by: str
    approved_at: datetime | None
    certificate_sha256: str


@dataclass(frozen=True)
class CheckpointLine:
    log: str
    seq: int
    hash: str
    created_at: datetime
    public_key: str


@dataclass
class AreaSection:
    code: str
    name: str
    name_en: str
    people: list[PersonLine] = field(default_factory=list)
    visits: list[VisitLine] = field(default_factory=list)
    denials: list[DenialLine] = field(default_factory=list)
    alarms: list[AlarmLine] = field(default_factory=list)
    incidents: list[IncidentLine] = field(default_factory=list)
    still_inside: list[InsideLine] = field(default_factory=list)
    # Totals over everyone, also when ``people``/``still_inside`` list only part of them:
    entries: int = 0
    exits: int = 0
    staff_count: int = 0  # staff who crossed at least once this month
    visitor_count: int = 0
    staff_listed: int = 0  # how many of them ``people`` lists (the most frequent first)
    inside_per_day: list[tuple[date, int]] = field(default_factory=list)
    inside_total: int = 0  # lines of still_inside before the bound

    @property
    def people_omitted(self) -> int:
        return self.staff_count + self.visitor_count - len(self.people)

    @property
    def inside_omitted(self) -> int:
        return self.inside_total - len(self.still_inside)


@dataclass
class MonthlyReport:
    month: str
    site_name: str
    start: datetime  # instants of the month's bounds in the site's zone
    end: datetime
    generated_at: datetime
    end_of_day: time
    areas: list[AreaSection]
    site_alarms: list[AlarmLine]  # alarms and incidents tied to no area (e.g. integrity)
    site_incidents: list[IncidentLine]
    deletions: list[DeletionLine]
    checkpoints: list[CheckpointLine]
    public_keys: list[str]
    zone: ZoneInfo  # the site's zone: the month's days, and every time shown
    # the controllers whose records the report counts (every controller known when
    # ``all_controllers``); the report names them (CSV, PDF, page)
    controllers: list[str] = field(default_factory=list)
    all_controllers: bool = True


# What a report lists one by one, per area, at any number of people (the rest is in totals):
STAFF_TOP = 200  # staff with the most entries (every staff member is counted in the totals)
VISITORS_MAX = 5_000  # visitors who crossed (all of them in any realistic month)
INSIDE_MAX = 1_000  # "still inside at day end" lines (each day's count is always complete)


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants ``month`` (YYYY-MM) and the next month start in the site's ``zone``."""
    try:
        y, m = (int(x) for x in month.split("-"))
        first = date(y, m, 1)
    except ValueError:
        raise ReportError(f"month must be YYYY-MM, got {month!r}") from None
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return (
        datetime.combine(first, time(0), zone),
        datetime.combine(nxt, time(0), zone),
    )


def _name(p: Person | None) -> str:
    return p.name if p is not None else ""


@dataclass(frozen=True)
class _Who:
    name: str
    kind: str
    organization: str


_NOBODY = _Who("", "", "")


def _people_by_id(session: Session, ids: set[int]) -> dict[int, _Who]:
    """Name, kind and organization of many people in a few queries (not one per report row)."""
    out: dict[int, _Who] = {}
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):  # stay far below any bound-parameter limit
        chunk = wanted[i : i + 500]
        rows = session.execute(
            select(Person.id, Person.name, Person.kind, Person.organization).where(
                Person.id.in_(chunk)
            )
        )
        for pid, name, kind, org in rows:
            out[pid] = _Who(name, kind, org or "")
    return out


def _op_name(session: Session, op_id: int | None) -> str:
    if op_id is None:
        return ""
    op = session.get(Operator, op_id)  # few rows (alarms, incidents, deletions); kept in session
    return op.display_name if op else str(op_id)


_event_area = event_area


@dataclass
class _PeopleSummary:
    lines: list[PersonLine]
    entries: int
    exits: int
    staff: int
    visitors: int
    staff_listed: int


def _people(
    session: Session,
    area_ids: list[int],
    start: datetime,
    end: datetime,
    staff_top: int | None,
    by: tuple[Any, ...] = (),
) -> dict[int, _PeopleSummary]:
    """Entries and exits per person and area, counted by the database (one GROUP BY area,
    person over the month, for every area at once).

    Python reads one small row per (area, person) who crossed and keeps only what is listed:
    every visitor (up to VISITORS_MAX) and the ``staff_top`` staff with the most entries (all
    staff when None); the totals cover everyone. Names are read for the listed people only.
    """
    is_in = case((Event.direction == Direction.IN, 1), else_=0)
    is_out = case((Event.direction == Direction.OUT, 1), else_=0)
    is_visitor = case((Event.visitor.is_(True), 1), else_=0)  # PostgreSQL has no max(boolean)
    area = _event_area()
    rows = session.connection().execute(
        select(area, Event.person_id, func.max(is_visitor), func.sum(is_in), func.sum(is_out))
        .outerjoin(Door, Event.door_id == Door.id)
        .where(
            area.in_(area_ids),
            Event.occurred_at >= start,
            Event.occurred_at < end,
            *crossing(),  # the one definition: granted, door used
            *by,  # the chosen controllers' rows (none: every controller)
        )
        .group_by(area, Event.person_id)
    )
    totals = {aid: [0, 0, 0, 0] for aid in area_ids}  # in, out, staff, visitors
    tops: dict[int, list[tuple[int, int, int, int]]] = {aid: [] for aid in area_ids}
    shown: dict[int, list[tuple[int, int, int]]] = {aid: [] for aid in area_ids}
    for aid, pid, visitor, ins, outs in rows:
        ins, outs = int(ins or 0), int(outs or 0)
        t = totals[aid]
        t[0] += ins
        t[1] += outs
        if visitor:
            t[3] += 1
            if len(shown[aid]) < VISITORS_MAX:
                shown[aid].append((pid, ins, outs))
            continue
        t[2] += 1
        top = tops[aid]
        item = (ins, -pid, pid, outs)  # most entries first, then the lower id
        if staff_top is None or len(top) < staff_top:
            heapq.heappush(top, item)
        elif staff_top and item > top[0]:
            heapq.heapreplace(top, item)
    picked = {
        aid: [(pid, ins, outs) for ins, _, pid, outs in tops[aid]] + shown[aid] for aid in area_ids
    }
    who = _people_by_id(session, {pid for lines in picked.values() for pid, _, _ in lines})
    out = {}
    for aid in area_ids:
        lines = []
        for pid, ins, outs in picked[aid]:
            w = who.get(pid, _NOBODY)
            lines.append(PersonLine(pid, w.name, w.kind, w.organization, ins, outs))
        lines.sort(key=lambda x: (x.kind == PersonKind.VISITOR, x.name, x.person_id))
        t = totals[aid]
        out[aid] = _PeopleSummary(lines, t[0], t[1], t[2], t[3], len(tops[aid]))
    return out


def _devices(declared: list[Any] | None) -> str:
    parts = []
    for d in declared or []:
        if isinstance(d, dict):
            kind, serial = d.get("kind", ""), d.get("serial", "")
            parts.append(f"{kind} ({serial})" if serial else str(kind))
        else:
            parts.append(str(d))
    return ", ".join(parts)


def _visits(
    session: Session, area_id: int, start: datetime, end: datetime, by: tuple[Any, ...] = ()
) -> list[VisitLine]:
    visits = session.scalars(
        select(Visit)
        .where(Visit.area_id == area_id, Visit.expected_from < end, Visit.expected_until >= start)
        .order_by(Visit.expected_from, Visit.id)
    ).all()
    # one grouped count for all the month's visits instead of one count query per visit
    entries_by_visit: dict[int, int] = {}
    ids = [v.id for v in visits]
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Event.visit_id, func.count())
            .outerjoin(Door, Event.door_id == Door.id)
            .where(
                Event.visit_id.in_(ids[i : i + 500]),
                _event_area() == area_id,  # entries into this visit's area, as 入退室回数
                *entry(),  # the one definition: a grant whose door never opened is no entry
                Event.occurred_at >= start,
                Event.occurred_at < end,
                *by,
            )
            .group_by(Event.visit_id)
        )
        entries_by_visit.update((cast(int, vid), n) for vid, n in rows)
    out = []
    for v in visits:
        entries = entries_by_visit.get(v.id, 0)
        out.append(
            VisitLine(
                v.id,
                _name(v.visitor),
                v.visitor.organization or "",
                v.purpose,
                _name(v.host),
                _name(v.escort),
                _devices(v.declared_devices),
                v.expected_from,
                v.expected_until,
                v.signed_in_at,
                v.signed_out_at,
                int(entries or 0),
            )
        )
    return out


def _denials(
    session: Session,
    area_ids: list[int],
    start: datetime,
    end: datetime,
    by: tuple[Any, ...] = (),
) -> dict[int, list[DenialLine]]:
    """Denials by reason for every area in one grouped pass over the month."""
    area = _event_area()
    rows = session.execute(
        select(area, Event.reason, func.count())
        .outerjoin(Door, Event.door_id == Door.id)
        .where(
            area.in_(area_ids),
            Event.occurred_at >= start,
            Event.occurred_at < end,
            Event.decision == Decision.DENIED,
            *by,
        )
        .group_by(area, Event.reason)
    ).all()
    out: dict[int, list[DenialLine]] = {aid: [] for aid in area_ids}
    for aid, r, n in rows:
        out[aid].append(DenialLine(r, sentence(r, "ja"), sentence(r, "en"), n))
    for lines in out.values():
        lines.sort(key=lambda d: (-d.count, d.reason))
    return out


def _alarm_line(session: Session, a: Alarm) -> AlarmLine:
    place = a.door.name if a.door else (a.area.name if a.area else (a.reader or ""))
    return AlarmLine(
        a.id,
        a.kind,
        sentence(a.kind, "ja"),
        a.raised_at,
        place,
        a.state,
        a.acknowledged_at,
        _op_name(session, a.acknowledged_by),
        a.ack_comment or "",
        a.cleared_at,
        _op_name(session, a.cleared_by),
    )


def _alarms(
    session: Session,
    area_id: int | None,
    start: datetime,
    end: datetime,
    controllers: list[str] | None = None,
) -> list[AlarmLine]:
    """An area's alarms (site-wide ones: None). ``controllers``: those raised by them, or by
    no controller (the console, the scheduled duties)."""
    door = aliased(Door)
    area = func.coalesce(Alarm.area_id, door.area_id)
    where = area.is_(None) if area_id is None else area == area_id
    by = (
        ()
        if controllers is None
        else (or_(Alarm.controller.in_(controllers), Alarm.controller.is_(None)),)
    )
    alarms = session.scalars(
        select(Alarm)
        .outerjoin(door, Alarm.door_id == door.id)
        .where(where, Alarm.raised_at >= start, Alarm.raised_at < end, *by)
        .order_by(Alarm.raised_at, Alarm.id)
    ).all()
    return [_alarm_line(session, a) for a in alarms]


def _incidents(
    session: Session, area_id: int | None, start: datetime, end: datetime
) -> list[IncidentLine]:
    where = Incident.area_id.is_(None) if area_id is None else Incident.area_id == area_id
    in_month = or_(
        (Incident.opened_at >= start) & (Incident.opened_at < end),
        (Incident.closed_at >= start) & (Incident.closed_at < end),
    )
    incs = session.scalars(
        select(Incident).where(where, in_month).order_by(Incident.opened_at, Incident.id)
    ).all()
    return [
        IncidentLine(
            i.id,
            i.kind,
            i.opened_at,
            i.state,
            i.summary,
            i.cause or "",
            i.prevention or "",
            i.closed_at,
            _op_name(session, i.closed_by),
            len((i.evidence or {}).get("events", [])),
            len((i.evidence or {}).get("snapshots", [])),
        )
        for i in incs
    ]


def day_ends(
    month_start: datetime, month_end: datetime, eod: time, zone: ZoneInfo
) -> list[tuple[date, datetime]]:
    """(local date, instant of that day's end-of-day time) for each day of the month, in the
    site's ``zone``."""
    out = []
    d = month_start.astimezone(zone).date()
    last = (month_end.astimezone(zone) - timedelta(seconds=1)).date()
    while d <= last:
        out.append((d, datetime.combine(d, eod, zone)))
        d += timedelta(days=1)
    return out


def _at_start(
    session: Session, area_ids: list[int], start: datetime, end: datetime
) -> dict[int, dict[int, int]]:
    """Who is inside each area at ``start`` and since when, replaying nothing in Python.

    One grouped query over the history (every area at once) gives each (area, person) their
    first and last entry and last exit before ``start``, and keeps (HAVING) only those whose
    last entry is not older than their last exit: the people who may be inside, so Python's
    memory follows how many are inside, not how many ever crossed. With no exit at all, a
    person is inside since their first entry. Otherwise "since" is the first entry after the
    last exit: only those few rows (from the last exit on, through the person index) are read
    and replayed, which also settles an entry and exit at the very same instant by seq,
    exactly as a full replay would. Used once per area: the result is stored as the month
    start's snapshot, and each month's report stores its end for the next (see
    ``_Snapshots``).
    """
    is_in = Event.direction != Direction.OUT
    area = _event_area()
    last_in = func.max(case((is_in, Event.occurred_at)))
    last_out = func.max(case((Event.direction == Direction.OUT, Event.occurred_at)))
    rows = session.connection().execute(
        select(area, Event.person_id, func.min(case((is_in, Event.occurred_at))), last_in, last_out)
        .outerjoin(Door, Event.door_id == Door.id)
        .where(area.in_(area_ids), Event.occurred_at < start, *crossing())
        .group_by(area, Event.person_id)
        .having(last_in.is_not(None), or_(last_out.is_(None), last_in >= last_out))
    )
    first_in: dict[tuple[int, int], datetime] = {}
    last_out_of: dict[tuple[int, int], datetime] = {}
    for aid, pid, lo, _hi, out in rows:
        key = (int(aid), int(pid))
        if out is None:
            first_in[key] = cast(datetime, _aware(lo))
        else:
            last_out_of[key] = cast(datetime, _aware(out))
    steps: dict[int, list[Step]] = {aid: [] for aid in area_ids}
    for (aid, pid), since in first_in.items():
        steps[aid].append((pid, _to_us(since), False))
    # Their own rows only, read through the person index (ix_events_person_occurred) a few
    # hundred people at a time; the area and "from the last exit on" are checked here, as a
    # list of OR-ed (person, area, time) terms made SQLite give up the index and scan.
    wanted: dict[int, dict[int, datetime]] = {}  # person -> area -> last exit
    for (aid, pid), out_at in last_out_of.items():
        wanted.setdefault(pid, {})[aid] = out_at
    pids = sorted(wanted)
    for i in range(0, len(pids), 500):
        tail = session.connection().execute(
            select(area, Event.person_id, Event.direction, Event.occurred_at)
            .outerjoin(Door, Event.door_id == Door.id)
            .where(
                Event.person_id.in_(pids[i : i + 500]),
                Event.occurred_at < start,
                area.in_(area_ids),
                *crossing(),
            )
            .order_by(Event.occurred_at, Event.seq, Event.id)
        )
        inside: dict[tuple[int, int], datetime] = {}
        for aid, pid, direction, when in tail:
            since_out = wanted[cast(int, pid)].get(int(aid))
            t = cast(datetime, _aware(when))
            if since_out is None or t < since_out:
                continue
            key = (int(aid), cast(int, pid))
            if direction == Direction.IN:
                inside.setdefault(key, t)
            else:
                inside.pop(key, None)
        for (aid, pid), since in inside.items():
            steps[aid].append((pid, _to_us(since), False))
    result: dict[int, dict[int, int]] = {}
    for aid in area_ids:
        state: dict[int, int] = {}
        _apply(state, steps[aid])
        result[aid] = state
    return result


# (person, since as µs since 1970 UTC or None, any exit): integers are cheap to sort, store
# and load for the hundreds of thousands of people a generated site keeps "inside"
Step = tuple[int, int | None, bool]
Steps = list[list[Step]]


def _steps(
    session: Session, area_ids: list[int], start: datetime, end: datetime, ends: list[datetime]
) -> dict[int, Steps]:
    """Each person's net change of occupancy in each period, computed by the database.

    Period 0 is everything before the month start; period k is (day end k-1, day end k].
    Replaying a person's crossings of one period in time order, what is left at its end is
    fully described by: the time of the first entry of the trailing run of entries (``since``,
    None when the last crossing is an exit) and whether any exit happened in the period.
    For the month's days those come from a window over each (person, period) numbered from
    the newest back: the rows with no exit at or after them are that trailing run. Period 0
    (all history) is left empty here: see ``_still_inside``. Python then
    sees at most one row per person and period, not every crossing since the log began.
    All the report's areas in one pass over the month (partitioned by area too), not one
    pass per area.
    """
    period = case(*((Event.occurred_at <= at, k + 1) for k, at in enumerate(ends)))
    moves = (
        select(
            _event_area().label("area"),
            Event.person_id.label("pid"),
            Event.occurred_at.label("at"),
            Event.seq.label("seq"),
            Event.id.label("id"),
            case((Event.direction == Direction.OUT, 1), else_=0).label("is_out"),
            period.label("period"),
        )
        .outerjoin(Door, Event.door_id == Door.id)
        .where(
            _event_area().in_(area_ids),
            Event.occurred_at < end,
            *crossing(),
            Event.occurred_at >= start,
            Event.occurred_at <= ends[-1],
        )
        .subquery()
    )
    exits_after = func.sum(moves.c.is_out).over(
        partition_by=(moves.c.area, moves.c.pid, moves.c.period),
        order_by=(moves.c.at.desc(), moves.c.seq.desc(), moves.c.id.desc()),
        rows=(None, 0),
    )
    numbered = select(
        moves.c.area,
        moves.c.pid,
        moves.c.at,
        moves.c.is_out,
        moves.c.period,
        exits_after.label("exits_after"),
    ).subquery()
    rows = (
        session.connection()
        .execute(
            select(
                numbered.c.area,
                numbered.c.period,
                numbered.c.pid,
                func.min(case((numbered.c.exits_after == 0, numbered.c.at))),
                func.max(numbered.c.is_out),
            ).group_by(numbered.c.area, numbered.c.period, numbered.c.pid)
        )
        .all()
    )
    out: dict[int, Steps] = {aid: [[] for _ in range(len(ends) + 1)] for aid in area_ids}
    # period 0 (everything before the month start) is the caller's: a snapshot or _at_start
    for aid, k, pid, since, any_out in rows:
        t = _aware(since)
        out[aid][k].append((pid, None if t is None else _to_us(t), bool(any_out)))
    return out


def _apply(inside: dict[int, int], steps: list[tuple[int, int | None, bool]]) -> None:
    """One period's changes, keeping ``inside`` in order of entry time (as a replay would)."""
    entering = []
    for pid, since, any_out in steps:
        if since is None or any_out:
            inside.pop(pid, None)  # left (and maybe came back: re-entered below, later in order)
        if since is not None and pid not in inside:
            entering.append((since, pid))
    # everyone entering in this period went in after everyone already inside
    for since, pid in sorted(entering):
        inside[pid] = since


def _aware(t: datetime | str | None) -> datetime | None:
    """An aggregate's instant: func.min/max bypass the column type on SQLite."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t is not None and t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(t: datetime) -> int:
    """An instant as integer microseconds since 1970 UTC: exact, and cheap to store and read
    for the hundreds of thousands of people a snapshot may hold."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class _Snapshots:
    """Stored occupancy at month bounds (OccupancySnapshot): read when still valid, written
    when computed. One per (area, instant); a stale one is replaced."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Several controllers: one chain each (db.controllers). The head is then the sum of
        # the chains' heads, which grows with every append to any of them; which rows came
        # after it cannot be told from one number, so a snapshot is valid only while no
        # chain has grown since (the report then computes afresh: correct, slower).
        from db.controllers import event_chains

        heads = {
            c: int(session.scalar(select(func.max(Event.seq)).where(Event.controller == c)) or 0)
            for c in event_chains(session)
        }
        self.multi = sum(1 for h in heads.values() if h) > 1
        self.head = sum(heads.values())
        # the one chain of a site with one controller (a (controller, seq) index range)
        self.chain = max(heads, key=lambda c: heads[c])
        self._first_after: dict[int, datetime | None] = {}

    def _late(self, upto_seq: int) -> datetime | None:
        """The earliest instant of an event appended after ``upto_seq`` (a seq index range)."""
        if self.multi:
            return None if upto_seq == self.head else _EPOCH
        if upto_seq not in self._first_after:
            when: Any = Event.occurred_at
            if self.session.get_bind().dialect.name == "sqlite":
                # SQLite answers a bare min(occurred_at) by walking the (controller,
                # occurred_at) index in time order and testing each row's seq: the whole log
                # when nothing is late. As an expression (unary +) it reads the seq range.
                when = literal_column("+events.occurred_at", Event.occurred_at.type)
            self._first_after[upto_seq] = _aware(
                self.session.scalar(
                    select(func.min(when)).where(
                        Event.controller == self.chain, Event.seq > upto_seq
                    )
                )
            )
        return self._first_after[upto_seq]

    def _valid(self, area_id: int, at: datetime) -> int | None:
        """The id of a stored snapshot still valid (a stale one is deleted), else None."""
        got = self.session.execute(
            select(OccupancySnapshot.id, OccupancySnapshot.upto_seq).where(
                OccupancySnapshot.area_id == area_id, OccupancySnapshot.at == at
            )
        ).first()
        if got is None:
            return None
        late = self._late(got.upto_seq)
        if late is not None and late < at:  # a crossing before ``at`` arrived after it
            self.session.execute(delete(OccupancySnapshot).where(OccupancySnapshot.id == got.id))
            return None
        return int(got.id)

    def load(self, area_id: int, at: datetime) -> dict[int, int] | None:
        sid = self._valid(area_id, at)
        if sid is None:
            return None
        inside = self.session.scalar(
            select(OccupancySnapshot.inside).where(OccupancySnapshot.id == sid)
        )
        return {int(pid): int(us) for pid, us in inside or []}

    def has(self, area_id: int, at: datetime) -> bool:
        return self._valid(area_id, at) is not None

    def store(self, area_id: int, at: datetime, inside: dict[int, int]) -> None:
        row = OccupancySnapshot(
            area_id=area_id,
            at=at,
            upto_seq=self.head,
            inside=[[pid, since] for pid, since in inside.items()],
        )
        try:
            with self.session.begin_nested():  # another report may store the same one
                self.session.execute(
                    delete(OccupancySnapshot).where(
                        OccupancySnapshot.area_id == area_id, OccupancySnapshot.at == at
                    )
                )
                self.session.add(row)
        except IntegrityError:
            pass


def _still_inside(
    session: Session,
    area_id: int,
    start: datetime,
    end: datetime,
    eod: time,
    now: datetime,
    zone: ZoneInfo,
    limit: int | None = INSIDE_MAX,
    snapshots: _Snapshots | None = None,
    all_steps: dict[int, Steps] | None = None,
    at_start: dict[int, int] | None = None,
) -> tuple[list[InsideLine], list[tuple[date, int]], int]:
    """(the first ``limit`` lines in day order, each ended day's head count, all lines)."""
    # Occupancy at each day end without replaying the log: the database reduces every
    # (person, period) to one net change (``_steps``), so Python's work does not grow with
    # how often people cross. Who was inside at the month start comes from the snapshot the
    # previous month's report stored at its end (or the first report of this month stored),
    # else from one grouped pass over the history (``_at_start``), which is then stored.
    # A grant named by a ``not_used`` row (door never opened) is no crossing.
    days = [(day, at) for day, at in day_ends(start, end, eod, zone) if at <= now]
    if not days:
        return [], [], 0
    snapshots = snapshots or _Snapshots(session)
    ends = [at for _, at in days]
    closed = end <= now and ends[-1] < end  # the whole month is over: keep its end state
    if all_steps is None:
        all_steps = _steps(session, [area_id], start, end, ends + [end] if closed else ends)
    steps = all_steps[area_id]
    inside: dict[int, int] = {}
    if at_start is None:
        at_start = snapshots.load(area_id, start)
        if at_start is None:
            at_start = _at_start(session, [area_id], start, end)[area_id]
            snapshots.store(area_id, start, at_start)
    # in order of entry time, as a replay would have them
    inside.update(sorted(at_start.items(), key=lambda kv: (kv[1], kv[0])))
    lines: list[tuple[date, int, int]] = []
    per_day: list[tuple[date, int]] = []
    total = 0
    for k, (day, _) in enumerate(days, start=1):
        _apply(inside, steps[k])
        per_day.append((day, len(inside)))
        total += len(inside)
        room = len(inside) if limit is None else max(0, min(len(inside), limit - len(lines)))
        if room:
            lines.extend((day, pid, since) for pid, since in islice(inside.items(), room))
    if closed and not snapshots.has(area_id, end):
        _apply(inside, steps[len(days) + 1])
        snapshots.store(area_id, end, inside)
    who = _people_by_id(session, {pid for _, pid, _ in lines})
    out = []
    for day, pid, since in lines:
        w = who.get(pid, _NOBODY)
        out.append(InsideLine(day, pid, w.name, w.kind, _from_us(since)))
    return out, per_day, total


def build_monthly_report(
    session: Session,
    month: str,
    *,
    zone: ZoneInfo,
    area_codes: list[str] | None = None,
    site_name: str = "nyutai",
    public_keys: list[str] | None = None,
    now: datetime | None = None,
    staff_top: int | None = STAFF_TOP,
    inside_max: int | None = INSIDE_MAX,
    progress: Callable[[int, int, str], None] | None = None,
    controllers: list[str] | None = None,
) -> MonthlyReport:
    """The month's report. ``staff_top``/``inside_max`` bound what is listed one by one
    (None lists everything); totals and each day's head count always cover everyone.
    ``progress(done, total, step)`` is told as each step ends (for a page's progress bar).

    ``controllers`` (None or empty: every controller) limits the report to what those
    controllers recorded: the areas with a door of theirs (unless ``area_codes`` names
    areas), and, in each, the crossings, denials, visits' entries and alarms they wrote
    (alarms raised by no controller too), and their chains' checkpoints and deletions
    beside the audit log's. Who was still inside at each day's end stays the area's, over
    every controller: an area's occupancy is one fact, whichever door a person used."""
    start, end = month_bounds(month, zone)
    now = now or utcnow()
    eod = end_of_day(session)
    known = _known_controllers(session)
    chosen = sorted(set(controllers)) if controllers else None
    if chosen is not None:
        unknown = set(chosen) - set(known)
        if unknown:
            raise ReportError(f"unknown controller(s): {', '.join(sorted(unknown))}")
    by: tuple[Any, ...] = () if chosen is None else (Event.controller.in_(chosen),)
    q = select(Area).order_by(Area.code)
    if area_codes:
        q = q.where(Area.code.in_(area_codes))
    elif chosen is not None:
        owned: ColumnElement[bool] = Door.controller.in_(chosen)
        if DEFAULT_CONTROLLER_ID in chosen:  # a door no controller registered: the default's
            owned = or_(owned, Door.controller.is_(None))
        mine = select(Door.area_id).where(owned)
        q = q.where(Area.id.in_(mine))
    areas = session.scalars(q).all()
    if area_codes:
        missing = set(area_codes) - {a.code for a in areas}
        if missing:
            raise ReportError(f"unknown area(s): {', '.join(sorted(missing))}")
    sections = []
    snapshots = _Snapshots(session)  # stored in the caller's transaction (commit to keep)
    days = [at for _, at in day_ends(start, end, eod, zone) if at <= now]
    ends = days + [end] if end <= now and days and days[-1] < end else days
    total = 5 + len(areas)

    def step(done: int, what: str) -> None:
        if progress is not None:
            progress(done, total, what)

    step(0, "day ends")
    ids = [a.id for a in areas]
    all_steps = _steps(session, ids, start, end, ends) if ends and ids else None
    step(1, "month start")
    starts: dict[int, dict[int, int]] = {}
    if days:  # who was inside at the month start: stored snapshots, else one pass for the rest
        for aid in ids:
            got = snapshots.load(aid, start)
            if got is not None:
                starts[aid] = got
        todo = [aid for aid in ids if aid not in starts]
        if todo:
            for aid, state in _at_start(session, todo, start, end).items():
                snapshots.store(aid, start, state)
                starts[aid] = state
    step(2, "per person")
    people_by_area = _people(session, ids, start, end, staff_top, by) if ids else {}
    step(3, "denials")
    denials = _denials(session, ids, start, end, by) if ids else {}
    step(4, "areas")
    for k, a in enumerate(areas):
        people = people_by_area[a.id]
        inside, per_day, inside_total = _still_inside(
            session,
            a.id,
            start,
            end,
            eod,
            now,
            zone,
            inside_max,
            snapshots,
            all_steps,
            starts.get(a.id),
        )
        sections.append(
            AreaSection(
                a.code,
                a.name,
                a.name_en or "",
                people=people.lines,
                visits=_visits(session, a.id, start, end, by),
                denials=denials[a.id],
                alarms=_alarms(session, a.id, start, end, chosen),
                incidents=_incidents(session, a.id, start, end),
                still_inside=inside,
                entries=people.entries,
                exits=people.exits,
                staff_count=people.staff,
                visitor_count=people.visitors,
                staff_listed=people.staff_listed,
                inside_per_day=per_day,
                inside_total=inside_total,
            )
        )
        step(5 + k + 1, a.code)
    logs = None if chosen is None else [*(chain_log(c) for c in chosen), "audit"]
    dels = session.scalars(
        select(DeletionRecord)
        .where(DeletionRecord.created_at >= start, DeletionRecord.created_at < end)
        .where(*(() if logs is None else (DeletionRecord.log.in_(logs),)))
        .order_by(DeletionRecord.id)
    ).all()
    cps = session.scalars(
        select(Checkpoint)
        .where(Checkpoint.created_at >= start, Checkpoint.created_at < end)
        .where(*(() if logs is None else (Checkpoint.log.in_(logs),)))
        .order_by(Checkpoint.created_at, Checkpoint.log)
    ).all()
    keys = list(dict.fromkeys([*(public_keys or []), *(c.public_key for c in cps)]))
    return MonthlyReport(
        month=month,
        site_name=site_name,
        start=start,
        end=end,
        generated_at=now,
        end_of_day=eod,
        areas=sections,
        site_alarms=_alarms(session, None, start, end),
        site_incidents=_incidents(session, None, start, end),
        deletions=[
            DeletionLine(
                d.id,
                d.log,
                d.from_seq,
                d.to_seq,
                d.from_time,
                d.to_time,
                d.row_count,
                d.first_hash,
                d.last_hash,
                _op_name(session, d.approved_by),
                d.approved_at,
                d.certificate_sha256 or "",
            )
            for d in dels
        ],
        checkpoints=[CheckpointLine(c.log, c.seq, c.hash, c.created_at, c.public_key) for c in cps],
        public_keys=keys,
        zone=zone,
        controllers=chosen if chosen is not None else known,
        all_controllers=chosen is None,
    )


def _known_controllers(session: Session) -> list[str]:
    """Every controller id the site knows: registered, owning a door, or writing events (a
    few index lookups: db.controllers)."""
    from db.controllers import controller_codes, event_chains

    return sorted(set(controller_codes(session)) | set(event_chains(session)))


def controllers_covered(report: MonthlyReport) -> str:
    """Which controllers' records the report counts, as the CSV and PDF say it."""
    ids = ", ".join(report.controllers)
    if report.all_controllers:
        return f"全制御装置 / all controllers ({ids})"
    return (
        f"{ids} のみ / only {ids}"
        " (日末在室者は全制御装置 / still inside at day end: every controller)"
    )
