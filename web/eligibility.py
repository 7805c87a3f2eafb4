"""Designation and training state (3(2), 3(3)) and who may escort where, for the screens.

The controller makes the access decision at the door; these helpers only decide what the
console offers and highlights, using the same rules (domain.training).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from db.models import Authorization, AuthorizationState, Person, PersonKind, Training
from domain.training import current_since


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


def escorts_query(area_id: int, now: datetime, today: date) -> Select[Person]:
    """Staff who may escort a visitor in the area now: active, designated, trained within
    12 months (domain.training), holding an authorization for the area valid now.

    One query, in name order, for the caller to bound (``.limit``) or narrow (a name filter):
    at a million people nothing here is read into Python beyond the rows asked for.
    """
    valid_auth = (
        select(Authorization.id)
        .where(
            Authorization.person_id == Person.id,
            Authorization.area_id == area_id,
            Authorization.state == AuthorizationState.APPROVED,
            or_(Authorization.valid_from.is_(None), Authorization.valid_from <= now),
            or_(Authorization.valid_until.is_(None), Authorization.valid_until > now),
        )
        .exists()
    )
    trained = (
        select(Training.id)
        .where(Training.person_id == Person.id, Training.completed_on >= current_since(today))
        .exists()
    )
    return (
        select(Person)
        .where(
            Person.kind == PersonKind.STAFF,
            Person.active.is_(True),
            Person.designated.is_(True),
            valid_auth,
            trained,
        )
        .order_by(Person.kind, Person.name, Person.id)
    )


def eligible_escorts(
    session: Session, area_id: int, now: datetime, today: date, limit: int = 50
) -> list[Person]:
    """The first ``limit`` eligible escorts in name order (see ``escorts_query``)."""
    return list(session.scalars(escorts_query(area_id, now, today).limit(limit)))


def may_escort(session: Session, area_id: int, person_id: int, now: datetime, today: date) -> bool:
    """Whether this one person may escort in the area now (the same rule, one row)."""
    q = escorts_query(area_id, now, today).where(Person.id == person_id)
    return session.scalar(q.limit(1)) is not None
