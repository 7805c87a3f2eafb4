"""Host notifications for visits (4(2) 部外者): what to send, to whom, and the queue.

Two moments: the visitor's badge is issued (queued by the reception desk's request) and the
visitor first enters (found in the event log by ``scan_first_entries``, run by a background
duty, never by the controller's door path). Each is one row per recipient (the host and the
escort, once each) in ``notifications``; a sender (web.notify) delivers due rows and retries
failures with backoff. The guard's request only writes rows, so a slow or failing mail server
never blocks the desk.

Messages are Japanese first, then English; they name the visitor, area, purpose, window and
badge number, never a card id, PIN or anything secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from db.controllers import id_range, ids_between, number_of, range_heads
from db.models import Event, Notification, Person, SiteSetting, Visit
from db.types import utcnow
from domain.vocabulary import Decision, Direction, NotificationKind, NotificationState

NO_MAIL_SERVER = "not sent: no mail server"
NO_ADDRESS = "not sent: no e-mail address"
CURSOR_KEY = "notify_first_entry_cursor"  # the last event id scanned for first entries
BACKOFF_SECONDS = (30, 60, 300, 900, 3600)  # after attempt 1, 2, ...; the last one repeats
SCAN_BATCH = 500


def backoff(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts."""
    return timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


def _local(dt: datetime, zone: ZoneInfo) -> str:
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def compose(
    visit: Visit,
    kind: NotificationKind,
    zone: ZoneInfo,
    *,
    entered_at: datetime | None = None,
    door_name: str | None = None,
) -> tuple[str, str]:
    """(subject, body) in Japanese then English."""
    v = visit.visitor
    who = v.name + (f"（{v.organization}）" if v.organization else "")
    who_en = v.name + (f" ({v.organization})" if v.organization else "")
    area = visit.area.name
    area_en = visit.area.name_en or visit.area.name
    window = f"{_local(visit.expected_from, zone)} - {_local(visit.expected_until, zone)}"
    badge = (visit.badge.label if visit.badge is not None else None) or "-"
    escort = visit.escort.name if visit.escort is not None else "-"
    host = visit.host.name if visit.host is not None else "-"
    if kind == NotificationKind.BADGE_ISSUED:
        subject = (
            f"【入退】来訪者 {v.name} 様の入館バッジを発行しました / Visitor badge issued: {v.name}"
        )
        lead_ja = f"来訪者 {who} 様の入館バッジを発行しました。"
        lead_en = f"A visitor badge was issued to {who_en}."
    else:
        when = _local(entered_at, zone) if entered_at is not None else "-"
        subject = f"【入退】来訪者 {v.name} 様が入室しました / Visitor entered: {v.name}"
        lead_ja = f"来訪者 {who} 様が {area} に入室しました（{when}、{door_name or '-'}）。"
        lead_en = f"{who_en} entered {area_en} at {when} ({door_name or '-'})."
    body = "\n".join(
        [
            lead_ja,
            "",
            f"管理区域: {area}",
            f"用件: {visit.purpose}",
            f"来訪予定: {window}",
            f"バッジ番号: {badge}",
            f"立会者: {escort}",
            f"受入担当者: {host}",
            "",
            "----",
            lead_en,
            "",
            f"Managed area: {area_en}",
            f"Purpose: {visit.purpose}",
            f"Expected: {window}",
            f"Badge number: {badge}",
            f"Escort: {escort}",
            f"Host: {host}",
            "",
            "nyutai (入退) からの自動送信です / sent automatically by nyutai",
        ]
    )
    return subject, body


def queue_for_visit(
    session: Session,
    visit: Visit,
    kind: NotificationKind,
    zone: ZoneInfo,
    *,
    mail_configured: bool,
    now: datetime | None = None,
    event: Event | None = None,
) -> list[Notification]:
    """One row per recipient (host, then escort; the same person once); rows that exist
    already (the same visit, moment and person) are not queued again. Flushes."""
    now = now or utcnow()
    recipients: list[tuple[str, Person]] = []
    for role, person in (("host", visit.host), ("escort", visit.escort)):
        if person is not None and person.id not in {p.id for _r, p in recipients}:
            recipients.append((role, person))
    existing = set(
        session.scalars(
            select(Notification.recipient_person_id).where(
                Notification.visit_id == visit.id, Notification.kind == kind.value
            )
        )
    )
    door_name = event.door.name if event is not None and event.door is not None else None
    subject, body = compose(
        visit,
        kind,
        zone,
        entered_at=event.occurred_at if event is not None else None,
        door_name=door_name,
    )
    rows = []
    for role, person in recipients:
        if person.id in existing:
            continue
        address = (person.email or "").strip() or None
        if not mail_configured:
            state, error = NotificationState.NOT_SENT, NO_MAIL_SERVER
        elif address is None:
            state, error = NotificationState.NOT_SENT, NO_ADDRESS
        else:
            state, error = NotificationState.QUEUED, None
        row = Notification(
            created_at=now,
            kind=kind.value,
            visit_id=visit.id,
            event_id=event.id if event is not None else None,
            recipient_person_id=person.id,
            recipient_role=role,
            address=address,
            subject=subject,
            body=body,
            state=state,
            attempts=0,
            next_attempt_at=now if state == NotificationState.QUEUED else None,
            last_error=error,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _cursor(session: Session, now: datetime) -> dict[int, int]:
    """The last event id scanned in each controller's id range (db.controllers): several
    controllers write events, each in its own range."""
    row = session.get(SiteSetting, CURSOR_KEY)
    if row is not None and isinstance(row.value, int):
        return {1: row.value}  # written by a version with one controller
    if row is not None and isinstance(row.value, dict):
        return {int(k): int(v) for k, v in row.value.items()}
    # first run: look back one day (no mails about last year's visits), by the time index
    out: dict[int, int] = {}
    for n, top in range_heads(session).items():
        lo, hi = id_range(n)
        first = session.scalar(
            select(func.min(Event.id)).where(
                Event.occurred_at >= now - timedelta(days=1), Event.id >= lo, Event.id < hi
            )
        )
        out[n] = top if first is None else int(first) - 1
    return out


def _set_cursor(session: Session, value: dict[int, int], now: datetime) -> None:
    stored = {str(k): v for k, v in sorted(value.items())}
    row = session.get(SiteSetting, CURSOR_KEY)
    if row is None:
        session.add(SiteSetting(key=CURSOR_KEY, value=stored, updated_at=now))
    else:
        row.value, row.updated_at = stored, now


def scan_first_entries(
    session: Session,
    zone: ZoneInfo,
    *,
    mail_configured: bool,
    now: datetime | None = None,
    batch: int = SCAN_BATCH,
) -> int:
    """Queue first-entry notifications for visitors' granted entries logged since the last
    scan (one bounded batch by primary key); returns how many rows were queued. The caller
    commits."""
    now = now or utcnow()
    cursor = _cursor(session, now)
    upper = range_heads(session)  # per controller: rows committed from here on wait
    events: Sequence[Event] = session.scalars(
        select(Event)
        .options(joinedload(Event.door))
        .where(
            ids_between(cursor, upper),
            Event.visit_id.is_not(None),
            Event.decision == Decision.GRANTED,
            Event.direction == Direction.IN,
        )
        .order_by(Event.id)
        .limit(batch)
    ).all()
    # a full batch: continue after its last row next time (ids ascend range by range: the
    # ranges before the last row's are done); else everything up to ``upper``
    if len(events) == batch:
        stop = number_of(events[-1].id)
        last = {n: top for n, top in upper.items() if n < stop}
        last[stop] = events[-1].id
        last.update({n: c for n, c in cursor.items() if n > stop})
    else:
        last = {**cursor, **upper}
    queued = 0
    for ev in events:
        visit = session.get(Visit, ev.visit_id)
        if visit is None:
            continue
        queued += len(
            queue_for_visit(
                session,
                visit,
                NotificationKind.FIRST_ENTRY,
                zone,
                mail_configured=mail_configured,
                now=now,
                event=ev,
            )
        )
    if last != cursor:
        _set_cursor(session, last, now)
    return queued


def due(session: Session, now: datetime, limit: int = 20) -> list[int]:
    """Ids of queued notifications whose next attempt is due, oldest first."""
    return list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.state == NotificationState.QUEUED,
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
    )


def record_attempt(
    row: Notification, now: datetime, error: str | None, *, max_attempts: int
) -> None:
    """After one delivery attempt: sent, or retried later with backoff, or failed for good."""
    row.attempts += 1
    if error is None:
        row.state, row.sent_at, row.last_error, row.next_attempt_at = (
            NotificationState.SENT,
            now,
            None,
            None,
        )
        return
    row.last_error = error[:300]
    if row.attempts >= max_attempts:
        row.state, row.next_attempt_at = NotificationState.FAILED, None
    else:
        row.next_attempt_at = now + backoff(row.attempts)
