"""Designation and training state (3(2), 3(3)) and who may escort where, for the screens.

The controller makes the access decision at the door; these helpers only decide what the
console offers and highlights, using the same rules (domain.training).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Authorization, AuthorizationState, Person, PersonKind, Training
from domain.training import training_current


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
            if training_current(trained.get(pid), today)
        ),
        key=lambda p: p.name,
    )
