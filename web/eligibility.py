"""Designation and training state (3(2), 3(3)) and who may escort where, for the screens.

The controller makes the access decision at the door; these helpers only decide what the
console offers and highlights, using the same rules (training valid 12 months).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Authorization, AuthorizationState, Person, PersonKind, Training

EXPIRING_WITHIN = timedelta(days=30)


def training_expiry(completed_on: date) -> date:
    """Training is valid for 12 months: until the same day one year later."""
    try:
        return completed_on.replace(year=completed_on.year + 1)
    except ValueError:  # 29 February
        return completed_on.replace(year=completed_on.year + 1, day=28)


def training_state(last: date | None, today: date) -> str:
    """missing / expired / expiring (within 30 days) / current."""
    if last is None:
        return "missing"
    expiry = training_expiry(last)
    if expiry <= today:
        return "expired"
    if expiry - today <= EXPIRING_WITHIN:
        return "expiring"
    return "current"


def last_trainings(session: Session, person_ids: list[int]) -> dict[int, date]:
    if not person_ids:
        return {}
    rows = session.execute(
        select(Training.person_id, func.max(Training.completed_on))
        .where(Training.person_id.in_(person_ids))
        .group_by(Training.person_id)
    )
    return {pid: d for pid, d in rows}


def authorization_valid(auth: Authorization, now: datetime) -> bool:
    if auth.state != AuthorizationState.APPROVED:
        return False
    if auth.valid_from is not None and now < auth.valid_from:
        return False
    return not (auth.valid_until is not None and now >= auth.valid_until)


def eligible_escorts(session: Session, area_id: int, now: datetime, today: date) -> list[Person]:
    """Staff who may escort a visitor in the area now: active, designated, trained, authorized."""
    auths = session.scalars(
        select(Authorization)
        .join(Person, Person.id == Authorization.person_id)
        .where(
            Authorization.area_id == area_id,
            Person.kind == PersonKind.STAFF,
            Person.active.is_(True),
            Person.designated.is_(True),
        )
    ).all()
    candidates = {a.person_id: a.person for a in auths if authorization_valid(a, now)}
    trained = last_trainings(session, list(candidates))
    return sorted(
        (
            p
            for pid, p in candidates.items()
            if training_state(trained.get(pid), today) in ("current", "expiring")
        ),
        key=lambda p: p.name,
    )
