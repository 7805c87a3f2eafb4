"""Frozen facts the decision needs, read from the database in one place.

The decision (controller.decision) is pure: it never touches the database. This module is
the only I/O on its input side, so a test can build facts by hand or load them from rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    Area,
    Authorization,
    AuthorizationState,
    Credential,
    Door,
    Person,
    PersonKind,
    Training,
    Visit,
)


@dataclass(frozen=True, slots=True)
class CredentialFacts:
    id: int
    technology: str
    card_id: str
    state: str
    valid_from: datetime | None
    valid_until: datetime | None
    pin_hash: str | None
    failed_pin_count: int
    temporary: bool


@dataclass(frozen=True, slots=True)
class PersonFacts:
    id: int
    kind: str
    name: str
    active: bool
    designated: bool
    last_training_on: date | None

    @property
    def is_visitor(self) -> bool:
        return self.kind == PersonKind.VISITOR


@dataclass(frozen=True, slots=True)
class AuthorizationFacts:
    id: int
    valid_from: datetime | None
    valid_until: datetime | None
    schedule: dict[str, Any] | None
    default_purpose: str | None


@dataclass(frozen=True, slots=True)
class VisitFacts:
    id: int
    area_id: int
    escort_id: int | None
    purpose: str
    expected_from: datetime
    expected_until: datetime
    device_kinds: tuple[str, ...]
    signed_out: bool


@dataclass(frozen=True, slots=True)
class CardFacts:
    """Everything known about one presented card, for one area."""

    credential: CredentialFacts | None
    person: PersonFacts | None
    authorizations: tuple[AuthorizationFacts, ...] = ()
    visit: VisitFacts | None = None


@dataclass(frozen=True, slots=True)
class AreaPolicy:
    id: int
    code: str
    antipassback: str
    escort_policy: str
    visitor_exit_needs_escort: bool
    max_visitors_per_escort: int
    two_person_rule: bool
    permitted_devices: tuple[str, ...]
    offline: str = "cached"


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    id: int
    code: str
    area: AreaPolicy
    strike_seconds: float
    held_open_seconds: float
    pin_required: bool
    pin_timeout_seconds: float
    escort_window_seconds: float
    ask_purpose: bool
    snapshot_on_entry: bool
    camera: str | None
    # the site's zone: weekly schedules and training days are read in its wall time
    zone: ZoneInfo


def load_door(session: Session, code: str, zone: ZoneInfo) -> DoorPolicy | None:
    door = session.scalar(select(Door).where(Door.code == code))
    return None if door is None else door_policy(door, zone)


def load_doors(session: Session, zone: ZoneInfo) -> dict[str, DoorPolicy]:
    """Every door's policy by code (the controller's memory holds these)."""
    return {d.code: door_policy(d, zone) for d in session.scalars(select(Door))}


def door_policy(door: Door, zone: ZoneInfo) -> DoorPolicy:
    a: Area = door.area
    area = AreaPolicy(
        id=a.id,
        code=a.code,
        antipassback=a.antipassback,
        escort_policy=a.escort_policy,
        visitor_exit_needs_escort=a.visitor_exit_needs_escort,
        max_visitors_per_escort=a.max_visitors_per_escort,
        two_person_rule=a.two_person_rule,
        permitted_devices=tuple(str(d) for d in (a.permitted_devices or [])),
        offline=a.offline,
    )
    return DoorPolicy(
        id=door.id,
        code=door.code,
        area=area,
        strike_seconds=door.strike_seconds,
        held_open_seconds=door.held_open_seconds,
        pin_required=door.pin_required,
        pin_timeout_seconds=door.pin_timeout_seconds,
        escort_window_seconds=door.escort_window_seconds,
        ask_purpose=door.ask_purpose,
        snapshot_on_entry=door.snapshot_on_entry,
        camera=door.camera,
        zone=zone,
    )


def load_card(session: Session, technology: str, card_id: str, area_id: int) -> CardFacts:
    """Facts for a card; an unknown card gives CardFacts(None, None)."""
    cred = session.scalar(
        select(Credential).where(Credential.card_id == card_id, Credential.technology == technology)
    )
    if cred is None:
        # Readers of another technology may report the same number (e.g. OSDP raw vs. UID):
        # fall back to the id alone when it is unambiguous.
        matches = session.scalars(select(Credential).where(Credential.card_id == card_id)).all()
        cred = matches[0] if len(matches) == 1 else None
    if cred is None:
        return CardFacts(None, None)
    cf = CredentialFacts(
        id=cred.id,
        technology=cred.technology,
        card_id=cred.card_id,
        state=cred.state,
        valid_from=cred.valid_from,
        valid_until=cred.valid_until,
        pin_hash=cred.pin_hash,
        failed_pin_count=cred.failed_pin_count,
        temporary=cred.temporary,
    )
    if cred.person_id is None:
        return CardFacts(cf, None)
    return CardFacts(cf, *load_person_facts(session, cred.person_id, area_id, cred.id))


def load_person_facts(
    session: Session, person_id: int, area_id: int, credential_id: int | None = None
) -> tuple[PersonFacts | None, tuple[AuthorizationFacts, ...], VisitFacts | None]:
    person = session.get(Person, person_id)
    if person is None:
        return None, (), None
    last_training = session.scalar(
        select(Training.completed_on)
        .where(Training.person_id == person_id)
        .order_by(Training.completed_on.desc())
        .limit(1)
    )
    pf = PersonFacts(
        id=person.id,
        kind=person.kind,
        name=person.name,
        active=person.active,
        designated=person.designated,
        last_training_on=last_training,
    )
    auths = tuple(
        AuthorizationFacts(a.id, a.valid_from, a.valid_until, a.schedule, a.default_purpose)
        for a in session.scalars(
            select(Authorization).where(
                Authorization.person_id == person_id,
                Authorization.area_id == area_id,
                Authorization.state == AuthorizationState.APPROVED,
            )
        )
    )
    visit = None
    if person.kind == PersonKind.VISITOR:
        q = select(Visit).where(Visit.visitor_id == person_id)
        if credential_id is not None:
            q = q.where(Visit.badge_credential_id == credential_id)
        # the newest visit not signed out, preferring this area
        rows = session.scalars(q.order_by(Visit.expected_from.desc())).all()
        open_rows = [v for v in rows if v.signed_out_at is None]
        chosen = next((v for v in open_rows if v.area_id == area_id), None) or (
            open_rows[0] if open_rows else (rows[0] if rows else None)
        )
        if chosen is not None:
            visit = VisitFacts(
                id=chosen.id,
                area_id=chosen.area_id,
                escort_id=chosen.escort_id,
                purpose=chosen.purpose,
                expected_from=chosen.expected_from,
                expected_until=chosen.expected_until,
                device_kinds=tuple(
                    str(d.get("kind", ""))
                    for d in (chosen.declared_devices or [])
                    if isinstance(d, dict)
                ),
                signed_out=chosen.signed_out_at is not None,
            )
    return pf, auths, visit
