"""Who may pass this door now, and why not: a pure function of (facts, door, state, now).

No I/O, no clock: the caller passes ``now``. Each outcome carries a reason code from
domain.reasons and what the door should do next (release, ask for a PIN, wait for an
escort). The daemon (controller.daemon) carries the outcome out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from controller.facts import AuthorizationFacts, CardFacts, DoorPolicy
from db.models import AntipassbackMode, CredentialState, Direction
from domain.reasons import Reason
from domain.schedule import within_schedule as schedule_allows
from domain.training import training_current

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Outcome(enum.StrEnum):
    GRANT = "grant"
    DENY = "deny"
    NEED_PIN = "need_pin"
    NEED_ESCORT = "need_escort"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: Reason
    purpose: str | None = None
    authorization_id: int | None = None
    antipassback_warning: bool = False

    @property
    def granted(self) -> bool:
        return self.outcome is Outcome.GRANT


@dataclass(frozen=True, slots=True)
class Presence:
    """The decision's view of occupancy for the presenting person and this area."""

    inside: bool = False
    forgiven: bool = False  # a guard reset the in/out state: skip anti-passback once


def deny(reason: Reason) -> Decision:
    return Decision(Outcome.DENY, reason)


def within_schedule(schedule: dict[str, object] | None, now: datetime, zone: ZoneInfo) -> bool:
    """``{"mon": [["08:00", "20:00"]], ...}`` in the site's wall time (``zone``); None or {}
    means any time. The rule (overnight spans included) is domain.schedule's, the one the web
    form uses."""
    return schedule_allows(schedule, now.astimezone(zone))


def check_credential(card: CardFacts, now: datetime) -> Decision | None:
    cred = card.credential
    if cred is None:
        return deny(Reason.UNKNOWN_CARD)
    if cred.state == CredentialState.LOCKED:
        return deny(Reason.CREDENTIAL_LOCKED)
    if cred.state in (CredentialState.LOST, CredentialState.BLOCKED):
        return deny(Reason.CREDENTIAL_LOST)
    if cred.state != CredentialState.ACTIVE:
        return deny(Reason.CREDENTIAL_INACTIVE)
    if cred.valid_from is not None and now < cred.valid_from:
        return deny(Reason.CREDENTIAL_NOT_YET_VALID)
    if cred.valid_until is not None and now >= cred.valid_until:
        return deny(Reason.CREDENTIAL_EXPIRED)
    if card.person is None:
        return deny(Reason.CREDENTIAL_INACTIVE)
    if not card.person.active:
        return deny(Reason.PERSON_INACTIVE)
    return None


def check_staff(card: CardFacts, now: datetime, zone: ZoneInfo) -> Decision | AuthorizationFacts:
    """3(2), 3(3), 4(2): designated, trained within 12 months, authorized now (calendar days
    and the weekly schedule in the site's zone)."""
    person = card.person
    assert person is not None
    if not person.designated:
        return deny(Reason.NOT_DESIGNATED)
    if person.last_training_on is None:
        return deny(Reason.TRAINING_MISSING)
    if not training_current(person.last_training_on, now.astimezone(zone).date()):
        return deny(Reason.TRAINING_EXPIRED)
    if not card.authorizations:
        return deny(Reason.NO_AUTHORIZATION)
    in_validity = [
        a
        for a in card.authorizations
        if (a.valid_from is None or a.valid_from <= now)
        and (a.valid_until is None or now < a.valid_until)
    ]
    if not in_validity:
        if all(a.valid_from is not None and now < a.valid_from for a in card.authorizations):
            return deny(Reason.AUTHORIZATION_NOT_YET_VALID)
        return deny(Reason.AUTHORIZATION_EXPIRED)
    for auth in in_validity:
        if within_schedule(auth.schedule, now, zone):
            return auth
    return deny(Reason.OUTSIDE_SCHEDULE)


def check_visit(card: CardFacts, door: DoorPolicy, now: datetime) -> Decision | None:
    visit = card.visit
    if visit is None or visit.signed_out:
        return deny(Reason.NO_ACTIVE_VISIT)
    if now < visit.expected_from:
        return deny(Reason.VISIT_NOT_STARTED)
    if now >= visit.expected_until:
        return deny(Reason.VISIT_EXPIRED)
    if visit.area_id != door.area.id:
        return deny(Reason.VISIT_WRONG_AREA)
    permitted = set(door.area.permitted_devices)
    if any(kind not in permitted for kind in visit.device_kinds):
        return deny(Reason.DEVICE_NOT_PERMITTED)
    return None


def decide(
    card: CardFacts,
    door: DoorPolicy,
    direction: Direction,
    presence: Presence,
    now: datetime,
) -> Decision:
    """The access decision for one card presentation."""
    if (refusal := check_credential(card, now)) is not None:
        return refusal
    person = card.person
    assert person is not None
    entering = direction == Direction.IN

    purpose: str | None = None
    auth_id: int | None = None
    if person.is_visitor:
        if entering and (refusal := check_visit(card, door, now)) is not None:
            return refusal
        assert card.visit is not None or not entering
        purpose = card.visit.purpose if card.visit else None
    elif entering:
        checked = check_staff(card, now, door.zone)
        if isinstance(checked, Decision):
            return checked
        purpose, auth_id = checked.default_purpose, checked.id

    # anti-passback: entering while inside, or leaving while not inside
    warning = False
    if (
        door.area.antipassback != AntipassbackMode.OFF
        and not presence.forgiven
        and presence.inside == entering
    ):
        if door.area.antipassback == AntipassbackMode.ENFORCE:
            return deny(Reason.ANTIPASSBACK)
        warning = True

    if person.is_visitor and (entering or door.area.visitor_exit_needs_escort):
        return Decision(Outcome.NEED_ESCORT, Reason.ESCORT_WANTED, purpose, None, warning)

    if entering and door.pin_required:
        if card.credential is None or not card.credential.pin_hash:
            return deny(Reason.PIN_NOT_SET)
        return Decision(Outcome.NEED_PIN, Reason.PIN_WANTED, purpose, auth_id, warning)

    if not entering:
        reason = Reason.GRANTED_ANTIPASSBACK_WARNING if warning else Reason.EXIT
        return Decision(Outcome.GRANT, reason, None, auth_id, warning)
    reason = Reason.GRANTED_ANTIPASSBACK_WARNING if warning else Reason.GRANTED
    return Decision(Outcome.GRANT, reason, purpose, auth_id, warning)


def escort_eligible(
    escort: CardFacts, escort_decision: Decision, visitor: CardFacts, door: DoorPolicy
) -> bool:
    """May this staff member escort this visitor through this door?

    The escort must themselves be granted at this door (designated, trained, authorized for the
    area: the same checks as any entry), and under the 'named' policy be the visit's escort.
    """
    if not escort_decision.granted or escort.person is None or escort.person.is_visitor:
        return False
    if door.area.escort_policy == "named":
        return visitor.visit is not None and visitor.visit.escort_id == escort.person.id
    return True


__all__ = [
    "Decision",
    "Outcome",
    "Presence",
    "decide",
    "escort_eligible",
    "within_schedule",
]
