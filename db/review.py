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

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.eventlog import append_audit
from db.models import (
    AccessReview,
    Area,
    AuditLog,
    Authorization,
    AuthorizationState,
    Decision,
    Direction,
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


def _active_auths(session: Session, now: datetime) -> list[Authorization]:
    return list(
        session.scalars(
            select(Authorization)
            .where(
                Authorization.state == AuthorizationState.APPROVED,
                (Authorization.valid_until.is_(None)) | (Authorization.valid_until > now),
            )
            .order_by(Authorization.id)
        )
    )


def _last_entry(session: Session, person_id: int, area_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(Event.occurred_at))
        .outerjoin(Door, Event.door_id == Door.id)
        .where(
            Event.person_id == person_id,
            func.coalesce(Event.area_id, Door.area_id) == area_id,
            Event.decision == Decision.GRANTED,
            Event.direction == Direction.IN,
        )
    )


def review_items(
    session: Session, now: datetime | None = None, *, zone: ZoneInfo
) -> list[ReviewItem]:
    """The findings at ``now``; days (training validity, last entry) in the site's ``zone``."""
    now = now or utcnow()
    today = now.astimezone(zone).date()
    items: list[ReviewItem] = []
    auths = _active_auths(session, now)
    for a in auths:
        area = session.get(Area, a.area_id)
        code = area.code if area else str(a.area_id)
        since = a.approved_at or a.created_at
        if since is not None and since <= now - timedelta(days=UNUSED_DAYS):
            last = _last_entry(session, a.person_id, a.area_id)
            if last is None or last < now - timedelta(days=UNUSED_DAYS):
                when = last.astimezone(zone).strftime("%Y-%m-%d") if last else "never"
                items.append(
                    ReviewItem(
                        UNUSED, a.id, a.person_id, a.person.name, code, f"last entry: {when}"
                    )
                )
        latest = session.scalar(
            select(func.max(Training.completed_on)).where(Training.person_id == a.person_id)
        )
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
                ReviewItem(
                    finding, a.id, a.person_id, a.person.name, code, f"training until {expires}"
                )
            )
    holders = {a.person_id for a in auths}
    for p in session.scalars(
        select(Person).where(Person.designated.is_(True), Person.active.is_(True))
    ):
        if p.id not in holders:
            items.append(ReviewItem(DESIGNATED_NO_AUTH, None, p.id, p.name, "", "designated"))
    return items


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
