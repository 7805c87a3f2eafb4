"""Section 9 access review: what a manager should look at, and the keep/revoke decisions.

Findings:
- ``unused_90d``: an approved authorization older than 90 days with no granted entry into
  its area in the last 90 days;
- ``training_expiring`` / ``training_expired``: the holder's latest training runs out (12
  months after completion, 3(3)) within 30 days, or already has;
- ``designated_no_authorization``: designated handling staff without any approved
  authorization (the designation itself may be stale).

A decision on an authorization is an AccessReview row (revoke also revokes the
authorization); a decision on a designation has no authorization to point at, so it is
recorded in the audit log only (revoke clears the designation). Both are audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.crossings import entry
from db.eventlog import append_audit
from db.models import (
    AccessReview,
    Area,
    AuditLog,
    Authorization,
    AuthorizationState,
    Door,
    Event,
    Operator,
    Person,
    Role,
    Training,
)
from db.types import utcnow
from domain.training import TrainingState, training_state, valid_through

UNUSED_DAYS = 90
UNUSED = "unused_90d"
TRAINING_EXPIRING = "training_expiring"
TRAINING_EXPIRED = "training_expired"
DESIGNATED_NO_AUTH = "designated_no_authorization"
DECISIONS = ("keep", "revoke")


class ReviewError(ValueError):
    """A review decision was refused (``code`` says why)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class ReviewItem:
    finding: str
    authorization_id: int | None
    person_id: int
    person: str
    area: str
    detail: str


WINDOW = 500  # authorizations (or designated people) examined per step


def _entries(
    session: Session, person_ids: list[int], since: datetime | None
) -> dict[tuple[int, int], datetime]:
    """Latest granted entry per (person, area) since ``since`` (None: ever), for a few
    hundred people (read through ix_events_person_occurred: their own rows only)."""
    area = func.coalesce(Event.area_id, Door.area_id)
    q = (
        select(Event.person_id, area, func.max(Event.occurred_at))
        .outerjoin(Door, Event.door_id == Door.id)
        .where(
            Event.person_id.in_(person_ids),
            *entry(),  # a grant whose door never opened is no entry
        )
        .group_by(Event.person_id, area)
    )
    if since is not None:
        q = q.where(Event.occurred_at >= since)
    rows = session.execute(q)
    out: dict[tuple[int, int], datetime] = {}
    for pid, aid, t in rows:
        if isinstance(t, str):  # func.max bypasses the column type on SQLite
            t = datetime.fromisoformat(t)
        if t is not None and t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        out[(cast(int, pid), aid)] = t
    return out


def authorization_findings(
    session: Session, now: datetime, after: int = 0, window: int = WINDOW, *, zone: ZoneInfo
) -> tuple[list[ReviewItem], int | None]:
    """Findings of the next ``window`` active authorizations with id > ``after``, in id order,
    and the id to continue after (None at the end). A few bounded queries per window: the
    review of a million authorizations is a walk of windows, never one load of them all."""
    today = now.astimezone(zone).date()
    auths = session.execute(
        select(
            Authorization.id,
            Authorization.person_id,
            Authorization.area_id,
            Authorization.approved_at,
            Authorization.created_at,
            Person.name,
            Area.code,
        )
        .join(Person, Person.id == Authorization.person_id)
        .outerjoin(Area, Area.id == Authorization.area_id)
        .where(
            Authorization.id > after,
            Authorization.state == AuthorizationState.APPROVED,
            (Authorization.valid_until.is_(None)) | (Authorization.valid_until > now),
        )
        .order_by(Authorization.id)
        .limit(window)
    ).all()
    if not auths:
        return [], None
    pids = sorted({a.person_id for a in auths})
    unused_since = now - timedelta(days=UNUSED_DAYS)
    recent = _entries(session, pids, unused_since)
    latest_training = dict(
        session.execute(
            select(Training.person_id, func.max(Training.completed_on))
            .where(Training.person_id.in_(pids))
            .group_by(Training.person_id)
        ).all()
    )
    unused = {
        a.id
        for a in auths
        if (since := a.approved_at or a.created_at) is not None
        and since <= unused_since
        and (a.person_id, a.area_id) not in recent
    }
    # the last entry ever of each unused one, in one grouped query (not one query each)
    unused_pids = sorted({a.person_id for a in auths if a.id in unused})
    ever = _entries(session, unused_pids, None) if unused_pids else {}
    items: list[ReviewItem] = []
    for a in auths:
        code = a.code if a.code is not None else str(a.area_id)
        if a.id in unused:
            last = ever.get((a.person_id, a.area_id))
            when = last.astimezone(zone).strftime("%Y-%m-%d") if last else "never"
            items.append(ReviewItem(UNUSED, a.id, a.person_id, a.name, code, f"last entry: {when}"))
        latest = latest_training.get(a.person_id)
        if latest is not None:
            state = training_state(latest, today)
            if state is TrainingState.EXPIRED:
                finding = TRAINING_EXPIRED
            elif state is TrainingState.EXPIRING:
                finding = TRAINING_EXPIRING
            else:
                continue
            expires = valid_through(latest)
            items.append(
                ReviewItem(finding, a.id, a.person_id, a.name, code, f"training until {expires}")
            )
    return items, (auths[-1].id if len(auths) == window else None)


def designation_findings(
    session: Session, now: datetime, after: int = 0, window: int = WINDOW, *, zone: ZoneInfo
) -> tuple[list[ReviewItem], int | None]:
    """Designated active people without an active authorization, among the next ``window``
    designated people with id > ``after``; and the id to continue after (None at the end)."""
    people = session.execute(
        select(Person.id, Person.name)
        .where(Person.designated.is_(True), Person.active.is_(True), Person.id > after)
        .order_by(Person.id)
        .limit(window)
    ).all()
    if not people:
        return [], None
    holders = set(
        session.scalars(
            select(Authorization.person_id).where(
                Authorization.person_id.in_([p.id for p in people]),
                Authorization.state == AuthorizationState.APPROVED,
                (Authorization.valid_until.is_(None)) | (Authorization.valid_until > now),
            )
        )
    )
    items = [
        ReviewItem(DESIGNATED_NO_AUTH, None, p.id, p.name, "", "designated")
        for p in people
        if p.id not in holders
    ]
    return items, (people[-1].id if len(people) == window else None)


def iter_review_items(
    session: Session, now: datetime | None = None, *, zone: ZoneInfo
) -> Iterator[ReviewItem]:
    """Every finding, window by window (constant memory: the CLI streams them); days
    (training validity, last entry) in the site's ``zone``."""
    now = now or utcnow()
    for step in (authorization_findings, designation_findings):
        after: int | None = 0
        while after is not None:
            items, after = step(session, now, after, zone=zone)
            yield from items


def review_items(
    session: Session, now: datetime | None = None, *, zone: ZoneInfo
) -> list[ReviewItem]:
    return list(iter_review_items(session, now, zone=zone))


def _check_reviewer(op: Operator, decision: str) -> None:
    if op.role != Role.MANAGER or not op.active:
        raise ReviewError("not_manager", "only an active manager records review decisions")
    if decision not in DECISIONS:
        raise ReviewError("bad_decision", f"decision must be one of {DECISIONS}")


def record_review(
    session: Session,
    operator: Operator,
    authorization_id: int,
    finding: str,
    decision: str,
    note: str | None = None,
) -> AccessReview:
    """Record keep/revoke on an authorization (flushes and audits; the caller commits)."""
    _check_reviewer(operator, decision)
    auth = session.get(Authorization, authorization_id)
    if auth is None:
        raise ReviewError("unknown_authorization", f"no authorization {authorization_id}")
    now = utcnow()
    before = {"state": auth.state}
    if decision == "revoke":
        auth.state = AuthorizationState.REVOKED
    row = AccessReview(
        authorization_id=auth.id,
        finding=finding,
        decision=decision,
        note=note,
        decided_by=operator.id,
        decided_at=now,
    )
    session.add(row)
    session.flush()
    append_audit(
        session,
        AuditLog(
            occurred_at=now,
            operator_id=operator.id,
            username=operator.username,
            action=f"review.{decision}",
            target_type="authorization",
            target_id=str(auth.id),
            before=before,
            after={"state": auth.state, "finding": finding, "note": note, "review_id": row.id},
        ),
    )
    return row


def record_designation_review(
    session: Session, operator: Operator, person_id: int, decision: str, note: str | None = None
) -> None:
    """Keep or revoke a designation with no authorization (audited; the caller commits)."""
    _check_reviewer(operator, decision)
    person = session.get(Person, person_id)
    if person is None:
        raise ReviewError("unknown_person", f"no person {person_id}")
    before = {"designated": person.designated}
    if decision == "revoke":
        person.designated = False
    append_audit(
        session,
        AuditLog(
            occurred_at=utcnow(),
            operator_id=operator.id,
            username=operator.username,
            action=f"review.designation_{decision}",
            target_type="person",
            target_id=str(person.id),
            before=before,
            after={"designated": person.designated, "finding": DESIGNATED_NO_AUTH, "note": note},
        ),
    )
